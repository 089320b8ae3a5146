"""Strip credentials from URLs before they are printed, logged or exported.

Redaction is by default, not by a list of secret names: the whole userinfo goes
(everything up to the last ``@`` of the authority, so a raw ``@`` inside a password
cannot leave its tail behind) and so does every query value, except for the few
options known to be harmless (transport tuning a user needs to see when debugging).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

# query keys whose values are settings, never secrets
SAFE_QUERY_KEYS = frozenset({
    "transport", "rtsp_transport", "mode", "latency", "pkt_size", "fifo_size",
    "overrun_nonfatal", "buffer_size", "localport", "ttl", "reuse", "timeout",
    "connect_timeout", "listen", "payload_size", "maxbw", "format",
})
MASK = "***"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
# a URL inside free text (an error message, a log line): up to white space or quotes
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``rtsp://user:p@ss@host/x?token=1&transport=tcp`` ->
    ``rtsp://***@host/x?token=***&transport=tcp``."""
    scheme = _SCHEME.match(url)
    if not scheme:
        return _redact_schemeless(url)
    head, rest = url[:scheme.end()], url[scheme.end():]
    at = _userinfo_end(rest)
    if at > 0:  # 'udp://@239.0.0.1:1234' has an empty userinfo: nothing to hide
        rest = MASK + rest[at:]
    if head.lower().startswith(("rtmp", "rtmps")):
        rest = _mask_stream_key(rest)
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return head + rest[:query_at] + _redact_query(rest[query_at:])


def _userinfo_end(rest: str) -> int:
    """Where the userinfo ends (its last '@'), or -1. A password may hold '@', '/', ':',
    '?' or '#' unencoded: look before the path first, then before the query, and
    finally for any 'user:secret@' at all. Masking too much beats leaking."""
    slash = rest.find("/")
    at = rest.rfind("@", 0, slash if slash >= 0 else len(rest))
    if at >= 0 and slash >= 0:
        return at
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, query_at)
    if at >= 0:
        return at
    at = rest.rfind("@")
    return at if at >= 0 and ":" in rest[:at] else -1


def _mask_stream_key(rest: str) -> str:
    """RTMP carries its secret in the path: rtmp://host/app/STREAMKEY."""
    path_at = rest.find("/")
    if path_at < 0:
        return rest
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    parts = rest[path_at:end].split("/")
    if len(parts) > 2 and parts[-1]:
        parts[-1] = MASK
    return rest[:path_at] + "/".join(parts) + rest[end:]


def _redact_schemeless(text: str) -> str:
    """'rtsp//user:pw@cam/live', 'user:pw@cam:554/x': a URL typed without its '://'
    still carries a secret; a plain path with no 'x:y@' is left as it is."""
    at = text.rfind("@")
    if at >= 0 and ":" in text[:at]:
        return MASK + text[at:]
    return text


def _redact_query(tail: str) -> str:
    """'?a=1&b=2#frag' with every value but the safe ones masked (fragments too)."""
    if not tail:
        return tail
    query, hash_, fragment = tail[1:].partition("#") if tail[0] == "?" else ("", "", tail[1:])
    parts = []
    for item in re.split(r"([&;])", query):
        if item in ("&", ";"):
            parts.append(item)
            continue
        key, eq, value = item.partition("=")
        keep = key.lower() in SAFE_QUERY_KEYS and re.fullmatch(r"[\w.:-]*", value)
        if not eq:  # a bare item ('?SECRETTOKEN') may be the secret itself
            parts.append(item if key.lower() in SAFE_QUERY_KEYS or not item else MASK)
            continue
        parts.append(key + eq + (value if keep else MASK))
    out = ("?" + "".join(parts)) if tail[0] == "?" else ""
    if hash_ or tail[0] == "#":
        out += "#" + (MASK if fragment else "")
    return out


def redact_text(text: str) -> str:
    """Every URL inside a message redacted (FFmpeg echoes URLs in its errors)."""
    def one(match: re.Match) -> str:
        url = match.group(0)
        core = url.rstrip(".,:;)]}!")  # "...?key=x: refused": the colon is the message's
        return redact_url(core) + url[len(core):]
    return _URL_IN_TEXT.sub(one, text)


def scrub(text: str, url: str) -> str:
    """A message about `url` with every spelling of its secrets gone: the URL itself,
    its percent-encoded form (some errors quote it), then any other URL."""
    shown = redact_url(url)
    for spelling in {url, quote(url, safe=":/?&=@"), quote(url, safe="")}:
        if spelling and spelling != shown:
            text = text.replace(spelling, shown)
    return redact_text(text)


class RedactingFilter(logging.Filter):
    """On a handler: no log record leaves with a credential in it, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format call: let logging report it as it always does
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
