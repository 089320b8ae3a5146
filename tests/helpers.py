"""Media surgery for tests: remux with shifted/dropped packets, cut, corrupt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np


def remux(
    src: Path,
    dst: Path,
    shift: Callable[[str, float], float] = lambda kind, t: 0.0,
    drop: Callable[[av.Packet], bool] = lambda p: False,
    options: dict[str, str] | None = None,
) -> Path:
    """Copy the packets of src to dst, adding shift(kind, t) seconds to their timestamps."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options=options or {}) as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams
               if s.type in ("video", "audio")}
        for p in i.demux():
            if p.dts is None or p.stream.index not in out or drop(p):
                continue
            d = round(shift(p.stream.type, float(p.pts * p.time_base)) / p.time_base)
            p.pts += d
            p.dts += d
            p.stream = out[p.stream.index]
            o.mux(p)
    return dst


def packet_time(p: av.Packet) -> float:
    return float(p.pts * p.time_base)


def corrupt_middle(src: Path, dst: Path, n_bytes: int = 2000, seed: int = 1) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n_bytes] = np.random.default_rng(seed).integers(0, 256, n_bytes,
                                                                       np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst
