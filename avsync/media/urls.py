"""Is an input something we can open? Decided before any connection is tried.

A malformed URL, an unsupported protocol or a missing file is a permanent mistake:
retrying it forever (as a monitor does with a dropped stream) only hides it. These
checks run at start, the same for `check`, `monitor` arguments and the TOML file.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from avsync.errors import UsageError
from avsync.media.redact import redact_url

# protocols this build's FFmpeg (the PyAV wheel) has and we read: live transports,
# HTTP(S) for HLS and progressive files, and local files
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "tcp", "http", "https")
FILE_SCHEME = "file"
# what the PyAV wheel lacks: said plainly rather than retried as "Protocol not found"
MISSING_PROTOCOLS = {
    "srt": "SRT is not supported: the FFmpeg inside PyAV's wheel is built without libsrt. "
           "Relay it to UDP/MPEG-TS (e.g. srt-live-transmit srt://... udp://127.0.0.1:5000) "
           "and monitor udp://127.0.0.1:5000",
    "rist": "RIST is not supported by the FFmpeg inside PyAV's wheel",
}
_HOST_PORT = re.compile(r"^[\w.-]+:[^/\\]*$")


def is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://") and not os.path.exists(text)


def shown_input(text: str) -> str:
    """How an input is printed: an existing file as it is (a name like '10:00@BBC1.ts'
    is not a credential), anything else redacted, and never a character that cannot
    be written as UTF-8 (a file name in another encoding)."""
    try:
        exists = os.path.exists(local_path(text))
    except ValueError:  # a NUL byte
        exists = False
    shown = text if exists else redact_url(text)
    return shown.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\0")


def local_path(text: str) -> str:
    """'file:///a/b.mp4' and 'file:/a/b.mp4' -> '/a/b.mp4'; anything else unchanged."""
    if text.lower().startswith("file://"):
        return text[len("file://"):]
    if text.lower().startswith("file:"):
        return text[len("file:"):]
    return text


def check_input(text: str) -> None:
    """UsageError with one line if `text` can never be opened; silent otherwise.

    Files are checked for existence only (whether they are media is the decoder's call).
    """
    if text.startswith("capture:"):  # camera + microphone: media.capture validates it
        return
    if os.path.exists(text):  # a file, even one whose name holds '://'
        return
    if text.lower().startswith("file:"):
        _check_path(local_path(text))
        return
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        _check_path(text)
        return
    shown = redact_url(text)
    if scheme in MISSING_PROTOCOLS:
        raise UsageError(f"{shown}: {MISSING_PROTOCOLS[scheme]}")
    if scheme not in NETWORK_SCHEMES:
        raise UsageError(f"{shown}: unsupported protocol {scheme!r}; avsync reads "
                         f"{', '.join(NETWORK_SCHEMES)} URLs and files")
    try:
        # host and port from what follows the userinfo: a password may hold '[' or ']'
        rest = text.split("://", 1)[1]
        slash = rest.find("/")
        at = rest.rfind("@", 0, slash if slash >= 0 else len(rest))
        parts = urlsplit(f"{scheme}://{rest[at + 1:]}")
        port = parts.port  # ValueError for a port that is not a number in 0..65535
    except ValueError as err:
        raise UsageError(f"{shown}: malformed URL ({err})") from None
    host = parts.hostname
    # udp://@:1234 and udp://:1234 listen on every interface: no host is fine there
    if not host and scheme not in ("udp", "rtp"):
        raise UsageError(f"{shown}: no host in the URL (e.g. {scheme}://192.0.2.10:554/live)")
    if scheme in ("udp", "rtp", "tcp") and port is None:
        raise UsageError(f"{shown}: a {scheme} URL needs a port (e.g. {scheme}://239.0.0.1:5000)")
    if port == 0:
        raise UsageError(f"{shown}: port 0 is not a port to connect to")


def _check_path(path: str) -> None:
    if os.path.exists(path):
        return
    hint = ""
    almost = [s for s in (*NETWORK_SCHEMES, *MISSING_PROTOCOLS)
              if path.lower().startswith((f"{s}:", f"{s}//"))]
    if almost:
        hint = f" (a URL? write {almost[0]}://host/...)"
    elif _HOST_PORT.match(path):
        hint = " (a stream? give the protocol, e.g. udp://host:port or rtsp://host:port/path)"
    raise UsageError(f"{redact_url(path)}: no such file{hint}")
