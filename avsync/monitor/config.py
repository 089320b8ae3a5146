"""The streams a monitor watches: `NAME=URL` arguments or a TOML file."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from avsync.errors import UsageError
from avsync.limits import MAX_OFFSET_MS
from avsync.media.redact import redact_url
from avsync.media.urls import check_input
from avsync.standards import DEFAULT_STANDARD, Tolerance, get_standard, parse_tolerance

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TRANSPORTS = ("tcp", "udp")


@dataclass(frozen=True)
class StreamSpec:
    name: str  # the `stream` label: given by the user, never derived from credentials
    url: str  # may hold credentials: never log it, use `shown`
    tolerance: Tolerance = field(default_factory=lambda: get_standard(DEFAULT_STANDARD))
    max_offset_s: float = 0.6
    rtsp_transport: str = "tcp"
    realtime: bool = False  # files, VOD playlists: play at media speed, as live would arrive
    options: dict[str, str] = field(default_factory=dict)  # extra FFmpeg options
    scorer: str = "auto"  # lip sync: auto, model or classical (avsync.lipsync)
    model_path: str | None = None  # lip sync: an ONNX sync model of the user's

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    @property
    def is_file(self) -> bool:
        if self.url.startswith("capture:"):
            return False
        return "://" not in self.url or self.url.startswith("file:")

    def ffmpeg_options(self, timeout_s: float) -> dict[str, str]:
        """Open/read timeouts so no call blocks forever, plus the transport."""
        us = str(int(timeout_s * 1e6))
        scheme = urlsplit(self.url).scheme.lower()
        opts: dict[str, str] = {}
        if scheme in ("rtsp", "rtsps"):
            opts = {"rtsp_transport": self.rtsp_transport, "timeout": us}
        elif scheme in ("srt",):
            opts = {"timeout": us, "connect_timeout": str(int(timeout_s * 1000))}
        elif scheme in ("udp", "rtp"):
            opts = {"timeout": us, "overrun_nonfatal": "1", "fifo_size": "1000000"}
        elif scheme in ("http", "https"):  # HLS and progressive HTTP
            opts = {"rw_timeout": us, "reconnect": "1"}
        return {**opts, **self.options}


def default_name(url: str) -> str:
    """A label for a bare URL: host and last path part, never the credentials."""
    parts = urlsplit(redact_url(url))  # an RTMP stream key must not become a label
    if parts.scheme and parts.hostname:
        segments = [s for s in parts.path.split("/") if s and s != "***"]
        tail = segments[-1] if segments else "stream"
        name = f"{parts.hostname}_{tail}"
    else:
        name = Path(url).stem or "stream"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:64]


def parse_stream_arg(text: str, defaults: dict | None = None) -> StreamSpec:
    """`NAME=URL` or a bare URL/path."""
    name, sep, url = text.partition("=")
    if not sep or "://" in name or "/" in name:
        name, url = default_name(text), text
    if not _NAME.match(name):
        raise UsageError(f"stream name {name!r}: use letters, digits and _ . : - (64 at most)")
    check_input(url)  # a permanent mistake is refused now, not retried forever
    return StreamSpec(name=name, url=url, **(defaults or {}))


def load_config(path: str | Path, defaults: dict | None = None) -> list[StreamSpec]:
    """[[stream]] tables: name, url, standard or tolerance, max_offset_ms, transport,
    realtime, options."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"--config {path}: not TOML ({err})") from None
    except IsADirectoryError:
        raise UsageError(f"--config {path}: is a folder, not a TOML file") from None
    specs = []
    tables = data.get("stream", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"--config {path}: streams are [[stream]] tables")
    for i, table in enumerate(tables, 1):
        where = f"--config {path}: stream {i}"
        if "url" not in table:
            raise UsageError(f"{where}: no url")
        unknown = set(table) - {"name", "url", "standard", "tolerance", "max_offset_ms",
                                "transport", "realtime", "options"}
        if unknown:
            raise UsageError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        for key in ("name", "url", "standard", "tolerance", "transport"):
            if key in table and not isinstance(table[key], str):
                raise UsageError(f"{where}: {key} must be a string")
        fields = dict(defaults or {})
        try:
            if "standard" in table:
                fields["tolerance"] = get_standard(table["standard"])
            if "tolerance" in table:
                fields["tolerance"] = parse_tolerance(table["tolerance"])
        except UsageError as err:
            raise UsageError(f"{where}: {err}") from None
        if "max_offset_ms" in table:  # the CLI's bounds, the CLI's message
            fields["max_offset_s"] = MAX_OFFSET_MS.check(table["max_offset_ms"],
                                                         f"{where}: max_offset_ms") / 1000
        if "transport" in table:
            if table["transport"] not in TRANSPORTS:
                raise UsageError(f"{where}: transport must be tcp or udp")
            fields["rtsp_transport"] = table["transport"]
        if "realtime" in table:
            if not isinstance(table["realtime"], bool):
                raise UsageError(f"{where}: realtime must be true or false")
            fields["realtime"] = table["realtime"]
        if "options" in table:
            if not isinstance(table["options"], dict):
                raise UsageError(f"{where}: options must be a table of FFmpeg options")
            fields["options"] = {str(k): str(v) for k, v in table["options"].items()}
        arg = f"{table['name']}={table['url']}" if "name" in table else table["url"]
        try:
            specs.append(parse_stream_arg(arg, fields))
        except UsageError as err:
            raise UsageError(f"{where}: {err}") from None
    if not specs:
        raise UsageError(f"--config {path}: no [[stream]] tables")
    return specs


def parse_shard(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3): this instance is shard 2 of 3 (1-based)."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise UsageError(f"--shard {text}: use K/N with 1 <= K <= N, e.g. 2/3")
    return int(k), int(n)


def shard_of(name: str, shards: int) -> int:
    """The shard (1-based) a stream belongs to: a stable hash of its name, the same on
    every host and every run, so N instances split one config with no coordination."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def take_shard(specs: list[StreamSpec], k: int, n: int) -> list[StreamSpec]:
    return [s for s in specs if shard_of(s.name, n) == k]
