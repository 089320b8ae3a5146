"""Strip credentials from URLs before they are printed, logged or exported."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@?#]*@")
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:passphrase|password|passwd|pass|pwd|token|key|secret|auth|"
    r"access_token|streamid)=)[^&;#]*",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``rtsp://user:pw@host/x?token=1`` -> ``rtsp://***@host/x?token=***``."""
    url = _USERINFO.sub(r"\g<scheme>***@", url)
    return _SECRET_PARAM.sub(r"\g<key>***", url)
