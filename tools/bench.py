#!/usr/bin/env python3
"""Benchmarks with figures to quote (never asserted in tests).

    python tools/bench.py check [--duration 600] [--size 1280x720] [--fps 25]

`check`: times `avsync check` on a flash/beep test-signal file against bare PyAV
decoding of the same file (both streams; FFmpeg's AUTO, SLICE and no threading, the
fastest taken as the baseline) in the same run, best of --repeat interleaved runs,
and prints speeds as x real time and their ratio (target: check >= 0.8x bare decode).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.check import check_file  # noqa: E402
from avsync.synth import TestSignalSpec, parse_fps, parse_size, write_test_signal  # noqa: E402

THREAD_TYPES = ("AUTO", "SLICE", "NONE")


def bare_decode(path: str, thread_type: str) -> float:
    """Seconds to demux and decode every video frame and audio block, nothing else."""
    start = time.perf_counter()
    with av.open(path) as container:
        streams = [container.streams.video[0], container.streams.audio[0]]
        for stream in streams:
            stream.thread_type = thread_type
        for packet in container.demux(*streams):
            for _ in packet.decode():
                pass
    return time.perf_counter() - start


def timed_check(path: str) -> tuple[float, float | None]:
    start = time.perf_counter()
    report = check_file(path)
    return time.perf_counter() - start, report.offset_ms


def bench_check(args: argparse.Namespace) -> dict:
    cache = Path(args.cache or tempfile.gettempdir()) / "avsync-bench"
    cache.mkdir(parents=True, exist_ok=True)
    spec = TestSignalSpec(duration_s=args.duration, fps=parse_fps(args.fps),
                          size=parse_size(args.size), offset_ms=args.offset)
    path = cache / f"signal-{args.size}-{args.fps}-{args.duration:g}s-{args.offset:g}ms.mp4"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        write_test_signal(path, spec)
    bare: dict[str, list[float]] = {t: [] for t in THREAD_TYPES}
    checked, offsets = [], []
    for _ in range(args.repeat):  # interleaved, so all see the same machine state
        for thread_type in THREAD_TYPES:
            bare[thread_type].append(bare_decode(str(path), thread_type))
        seconds, offset = timed_check(str(path))
        checked.append(seconds)
        offsets.append(offset)
    # the baseline is the fastest bare decode, whichever threading gave it
    bare_best = {t: min(v) for t, v in bare.items()}
    best_type = min(bare_best, key=bare_best.get)
    best_bare, best_check = bare_best[best_type], min(checked)
    return {
        "bench": "check",
        "file": str(path),
        "media_s": args.duration,
        "size": args.size,
        "fps": args.fps,
        "repeats": args.repeat,
        "bare_decode_s_by_thread_type": {t: round(v, 2) for t, v in bare_best.items()},
        "bare_decode_s": round(best_bare, 2),
        "bare_decode_thread_type": best_type,
        "check_vs_same_threading_decode": round(bare_best["AUTO"] / best_check, 3),
        "check_s": round(best_check, 2),
        "bare_decode_x_realtime": round(args.duration / best_bare, 1),
        "check_x_realtime": round(args.duration / best_check, 1),
        "check_vs_bare_decode": round(best_bare / best_check, 3),
        "injected_offset_ms": args.offset,
        "measured_offset_ms": [round(o, 3) if o is not None else None for o in offsets],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    check = sub.add_parser("check", help="check speed vs bare decode")
    check.add_argument("--duration", type=float, default=600.0)
    check.add_argument("--size", default="1280x720")
    check.add_argument("--fps", default="25")
    check.add_argument("--offset", type=float, default=-40.0)
    check.add_argument("--repeat", type=int, default=3)
    check.add_argument("--cache", help="folder for generated media (default: temp)")
    args = parser.parse_args()
    result = {"check": bench_check}[args.bench](args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
