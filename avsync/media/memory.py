"""Give freed heap memory back to the system after a connection ends (glibc only).

Each connection of a live stream starts new threads (our producer, FFmpeg's decoder
threads), and glibc gives threads heap arenas of their own. What a closed connection
freed there stays mapped to the process: a monitor whose streams reconnected every
few seconds grew ~10 MB per reconnection (tools/soak.py) with no live object behind
it (tracemalloc flat), and malloc_trim brought it back down. Elsewhere (musl, macOS,
Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import cache

_lock = threading.Lock()  # one trim at a time: several streams may end together


@cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return whole free pages of every heap arena to the system; True if it ran."""
    trim = _malloc_trim()
    if trim is None:
        return False
    with _lock:
        trim(0)
    return True
