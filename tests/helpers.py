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


def reencode(src: Path, dst: Path, crf: int = 28) -> Path:
    """Re-encode src's picture (H.264, another quality) and write its sound as PCM,
    keeping every frame's timestamp and every audio sample: the A/V relation of the
    copy is exactly the source's."""
    from fractions import Fraction

    with av.open(str(src)) as i, av.open(str(dst), "w", format="matroska") as o:
        vin, ain = i.streams.video[0], i.streams.audio[0]
        vout = o.add_stream("libx264", rate=vin.average_rate or 25)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = "yuv420p"
        vout.time_base = vin.time_base
        vout.options = {"crf": str(crf)}
        rate = ain.codec_context.sample_rate
        aout = o.add_stream("pcm_s16le", rate=rate)
        aout.layout = ain.codec_context.layout.name
        for frame in i.decode(vin, ain):
            if isinstance(frame, av.VideoFrame):
                frame.pict_type = av.video.frame.PictureType.NONE
                frame.time_base = vin.time_base
                o.mux(vout.encode(frame))
            else:
                pts = round(frame.time * rate)
                frame.pts, frame.time_base = pts, Fraction(1, rate)
                o.mux(aout.encode(frame))
        o.mux(vout.encode(None))
        o.mux(aout.encode(None))
    return dst
