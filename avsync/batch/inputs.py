"""What a batch checks: paths, folders (recursive, by glob), manifests and stdin,
expanded into a stable, de-duplicated list of inputs."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import sys
from dataclasses import dataclass

from avsync.errors import UsageError
from avsync.media.urls import is_url, local_path, shown_input

# what FFmpeg demuxes that people keep audio/video in (a folder walk takes these)
MEDIA_GLOBS = ("*.mp4", "*.m4v", "*.mov", "*.mkv", "*.webm", "*.ts", "*.m2ts", "*.mts",
               "*.mxf", "*.avi", "*.flv", "*.mpg", "*.mpeg", "*.vob", "*.3gp", "*.wmv",
               "*.ogv", "*.dv")


@dataclass(frozen=True)
class Input:
    path: str  # as the user gave it (a URL keeps its credentials: never print it)
    size: int | None  # bytes; None for URLs and files that are gone
    mtime: float | None
    # a local file's absolute path, links resolved: what workers open (a relative path
    # means nothing on a Ray worker) and what names it; None for URLs
    resolved: str | None = None
    inode: str | None = None  # "device:inode": the file itself, whatever its name

    @property
    def shown(self) -> str:
        return shown_input(self.path)

    @property
    def target(self) -> str:
        """What to open: the resolved path of a local file, else the URL."""
        return self.resolved or self.path

    @property
    def id(self) -> str:
        """Names the input: a local file by its resolved path (`lib/x` and `/abs/lib/x`
        are one input), a URL by its raw text (two that differ only in a secret differ
        here, but the secret cannot be read back from it)."""
        raw = self.target.encode("utf-8", "surrogateescape")
        return hashlib.sha256(raw).hexdigest()[:20]

    @property
    def key(self) -> tuple[str, int | None, float | None, str | None]:
        """What --resume compares: the same input, size, modification time and file."""
        return (self.id, self.size, self.mtime, self.inode)


def stat_input(path: str) -> Input:
    if is_url(path):
        return Input(path, None, None)
    try:
        local = local_path(path)
        resolved = os.path.realpath(local)
        st = os.stat(local)
    except (OSError, ValueError):  # ValueError: a NUL byte in the name
        return Input(path, None, None)  # checked later: the record says why
    return Input(path, st.st_size, round(st.st_mtime, 6), resolved,
                 f"{st.st_dev}:{st.st_ino}")


def read_list(lines) -> list[str]:
    """One path or URL a line; blank lines and '#' comments skipped."""
    out = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            out.append(text)
    return out


def expand(args: list[str], manifests: list[str] = (), globs: list[str] | None = None,
           stdin=None) -> list[Input]:
    """Every input, in the order given (folders sorted), each once."""
    patterns = tuple(globs) if globs else MEDIA_GLOBS
    paths: list[str] = []
    for manifest in manifests:
        try:
            with open(manifest, encoding="utf-8") as f:
                paths += read_list(f)
        except OSError as err:
            raise UsageError(f"--manifest {manifest}: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--manifest {manifest}: not a text file") from None
    for arg in args:
        if arg == "-":
            paths += read_list(stdin or sys.stdin)
        elif not is_url(arg) and os.path.isdir(arg):
            paths += walk(arg, patterns)
        else:
            paths.append(arg)
    seen: set[str] = set()
    unique = []
    for inp in map(stat_input, paths):  # one input per file, however it is spelt
        if inp.id not in seen:
            seen.add(inp.id)
            unique.append(inp)
    return unique


def walk(folder: str, patterns: tuple[str, ...]) -> list[str]:
    """Files under folder matching a pattern, whatever the case ('*.mp4' takes CLIP.Mp4),
    sorted; macOS resource forks ('._clip.mp4') are not media and are left out."""
    lowered = [p.lower() for p in patterns]
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            if name.startswith("._"):
                continue
            if any(fnmatch.fnmatch(name.lower(), p) for p in lowered):
                found.append(os.path.join(root, name))
    return sorted(found)
