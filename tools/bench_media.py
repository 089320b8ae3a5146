"""Benchmark media made from real talking heads: a short real clip looped to any
length, scaled to a broadcast size and re-encoded at a chosen frame rate and bitrate
(H.264 + AAC), so speed figures come from real faces, not only the synthetic head.

    python tools/bench_media.py SOURCE OUT.mp4 --seconds 60 --size 1280x720 --fps 25 --mbps 4

The loop restarts picture and sound together, so the copy keeps the source's sync.
"""

from __future__ import annotations

import argparse
import math
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "clips" / "dev"
# real recordings (originals, not renders) of ../shared/clips/dev/CATALOG.tsv
SOURCE_720P = SHARED / "liutaocode__talking_face_preprocessing__FAzSK8PLmGI.mp4"
SOURCE_1080P = SHARED / "jixinya__EAMM__M030_sad_3_001.mp4"
AUDIO_RATE = 48_000


def _decode(source: Path, size: tuple[int, int]) -> tuple[list, float, np.ndarray]:
    """The source's frames scaled to size (yuv420p), its frame rate and its audio
    (stereo float32 at AUDIO_RATE, trimmed to the video's length)."""
    frames, chunks = [], []
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    with av.open(str(source)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        fps = float(video.average_rate)
        for packet in container.demux(video, audio):
            for frame in packet.decode():
                if packet.stream is video:
                    frames.append(frame.reformat(width=size[0], height=size[1],
                                                 format="yuv420p").to_ndarray())
                else:
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
    sound = np.concatenate(chunks, axis=1)
    sound = sound[:, : round(len(frames) / fps * AUDIO_RATE)]
    return frames, fps, sound


def write_looped(source: Path, out: Path, seconds: float, size: tuple[int, int],
                 fps: int, mbps: float, offset_ms: float = 0.0,
                 jump: tuple[float, float] | None = None) -> Path:
    """jump (t, ms): from media time t the audio leads by ms instead of offset_ms."""
    frames, source_fps, sound = _decode(source, size)
    loop_s = len(frames) / source_fps
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.bit_rate = int(mbps * 1e6)
        vs.options = {"preset": "veryfast", "g": str(2 * fps)}
        aus = container.add_stream("aac", rate=AUDIO_RATE)
        aus.layout = "stereo"
        aus.bit_rate = 128_000
        for k in range(round(seconds * fps)):
            t = (k / fps) % loop_s  # the source frame shown at this time
            image = frames[min(len(frames) - 1, math.floor(t * source_fps + 1e-6))]
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            container.mux(vs.encode(frame))
        container.mux(vs.encode())
        block, total = 1024, round(seconds * AUDIO_RATE)
        loop_samples = sound.shape[1]
        for start in range(0, total, block):
            at = np.arange(start, min(total, start + block))
            # audio that leads by d: what plays at t was captured at t + d
            lead = np.full(len(at), offset_ms / 1000)
            if jump is not None:
                lead[at >= jump[0] * AUDIO_RATE] = jump[1] / 1000
            idx = (at + np.round(lead * AUDIO_RATE).astype(int)) % loop_samples
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, idx]),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            frame.time_base = Fraction(1, AUDIO_RATE)
            container.mux(aus.encode(frame))
        container.mux(aus.encode())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--mbps", type=float, default=4.0)
    parser.add_argument("--offset", type=float, default=0.0, metavar="MS",
                        help="audio leads by this (ms; < 0: late), on top of the source's")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    write_looped(args.source, args.out, args.seconds, (width, height), args.fps, args.mbps,
                 args.offset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
