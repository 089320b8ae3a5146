#!/usr/bin/env python3
"""Benchmarks with figures to quote (never asserted in tests).

    python tools/bench.py check [--duration 600] [--size 1280x720] [--fps 25]

    python tools/bench.py lipsync [CLIP | synthetic] [--scorer auto|classical] [--repeat 3]

`check`: times `avsync check` on a flash/beep test-signal file against bare PyAV
decoding of the same file (both streams; FFmpeg's AUTO, SLICE and no threading, the
fastest taken as the baseline) in the same run, best of --repeat interleaved runs,
and prints speeds as x real time and their ratio (target: check >= 0.8x bare decode).

    python tools/bench.py monitor [--streams 4,8,12,16] [--seconds 45] [--clip real-720p]

    python tools/bench.py memory [--minutes 1,10]

    python tools/bench.py batch [--files 40] [--repeat 3] [--no-ray]

`batch`: `avsync check FOLDER` on --files short clips (10 s test signals and talking
heads) with --jobs 1 and 2 and through a local 2-CPU Ray cluster: media hours per wall
hour, the 1 -> 2 jobs speed-up, and Ray's overhead per file (its extra wall time over
two local jobs, times two workers, per file).

`monitor`: N copies of a 1280x720 25 fps talking head (a real one looped, or the
synthetic head) played in real time into one monitor: the largest N whose processing
lag stays under 2 s, whose decoding stays within 1 s of the media clock (a backlog
before the rings, which the lag cannot see) and with nothing dropped, the latency from
a change of offset in the source (-40 -> +160 ms) to the live estimate moving by it,
and RSS per stream.

`memory`: peak RSS of `check` on a real head looped to each length (640x360): flat
in file length when nothing grows with the media.

`lipsync`: times `avsync check` on a talking-head clip (default: the 1280x720 29.97 fps
clip of ../shared/clips/dev, else, or with `synthetic`, a generated 30 s head on a
1280x720 25 fps canvas; `real-720p` / `real-1080p`: a real head of ../shared looped to
60 s, H.264 at 4 / 12 Mbit/s + AAC) as x real time, beside FFmpeg's bare decode of the
same file (medians of the interleaved runs, and their ratio), and splits the work by
stage: decode (bare PyAV, same threading), face (detector + mesh), features (mouth
crops, lip geometry, audio resampling and features) and scoring (the sync model or
the classical correlation, and the estimates), with the scoring time per window.
Stages run on two threads (producer, analysis), so their CPU seconds can add up to
more than the wall time. Their sum over the cores is the floor no schedule can beat
(`floor_x_realtime_all_cores`); the file decoded on one thread gives what one
monitor stream's decode costs in cores before any face work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync import lipsync  # noqa: E402
from avsync.check import CheckConfig, check_file  # noqa: E402
from avsync.estimate import classical  # noqa: E402
from avsync.features import audio as audio_features  # noqa: E402
from avsync.features import face  # noqa: E402
from avsync.lipsync import LipSyncConfig  # noqa: E402
from avsync.model import infer  # noqa: E402
from avsync.synth import TestSignalSpec, parse_fps, parse_size, write_test_signal  # noqa: E402

THREAD_TYPES = ("AUTO", "SLICE", "NONE")


def bare_decode(path: str, thread_type: str) -> float:
    """Seconds to demux and decode every video frame and audio block, nothing else."""
    return bare_decode_timed(path, thread_type)[0]


def bare_decode_timed(path: str, thread_type: str) -> tuple[float, float]:
    """bare_decode's wall seconds and the CPU seconds it took (FFmpeg's threads too)."""
    start, cpu0 = time.perf_counter(), time.process_time()
    with av.open(path) as container:
        streams = [container.streams.video[0], container.streams.audio[0]]
        for stream in streams:
            stream.thread_type = thread_type
        for packet in container.demux(*streams):
            for _ in packet.decode():
                pass
    return time.perf_counter() - start, time.process_time() - cpu0


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


SHARED_720P = (Path(__file__).resolve().parents[2] / "shared" / "clips" / "dev"
               / "liutaocode__talking_face_preprocessing__FAzSK8PLmGI.mp4")


class StageClock:
    """Accumulates thread CPU seconds spent inside wrapped functions, per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.thread_time() - start

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


# issue 11's files: a real talking head looped to a minute, 720p25 at 4 Mbit/s (a
# web/contribution rate) and 1080p25 at 12 Mbit/s (a broadcast rate)
REAL_CLIPS = {"real-720p": ("SOURCE_720P", (1280, 720), 4.0),
              "real-1080p": ("SOURCE_1080P", (1920, 1080), 12.0),
              "real-360p": ("SOURCE_720P", (640, 360), 1.0)}  # long files, quickly made


def real_clip(name: str, cache: str | None, seconds: float = 60.0,
              jump: tuple[float, float] | None = None, offset_ms: float = 0.0) -> Path:
    """A real talking head of ../shared looped to `seconds` (tools/bench_media.py)."""
    import bench_media

    source_name, size, mbps = REAL_CLIPS[name]
    source = getattr(bench_media, source_name)
    if not source.exists():
        raise SystemExit(f"bench: {name} needs {source} (../shared)")
    tag = f"-jump{jump[0]:g}s{jump[1]:g}ms" if jump else ""
    path = (Path(cache or tempfile.gettempdir()) / "avsync-bench"
            / f"{name}-{seconds:g}s{tag}-{offset_ms:g}ms.mp4")
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        bench_media.write_looped(source, path, seconds, size, 25, mbps, offset_ms, jump)
    return path


def _talking_head_clip(args: argparse.Namespace) -> Path:
    if args.clip in REAL_CLIPS:
        return real_clip(args.clip, args.cache)
    if args.clip and args.clip != "synthetic":
        return Path(args.clip)
    if not args.clip and SHARED_720P.exists():
        return SHARED_720P
    from avsync.synth import TalkingHeadSpec, write_talking_head

    path = Path(args.cache or tempfile.gettempdir()) / "avsync-bench" / "head-720p25.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_talking_head(path, TalkingHeadSpec(duration_s=30.0, canvas=(1280, 720)))
    return path


def bench_lipsync(args: argparse.Namespace) -> dict:
    path = _talking_head_clip(args)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        media_s = float(c.duration / 1e6) if c.duration else float(v.duration * v.time_base)
        size, fps = f"{v.codec_context.width}x{v.codec_context.height}", float(v.average_rate)
    config = CheckConfig(method="lipsync", lipsync=LipSyncConfig(scorer=args.scorer))
    walls, autos, auto_cpus, decodes, stages, offsets = [], [], [], [], [], []
    decode_cpus, one_thread_cpus = [], []
    for _ in range(args.repeat):  # interleaved, so all see the same machine state
        # the baseline: FFmpeg's bare decode, the faster of its two threadings
        wall, cpu = min(bare_decode_timed(str(path), t) for t in ("AUTO", "SLICE"))
        decodes.append(wall)
        decode_cpus.append(cpu)
        # one thread: what a stream's decode costs where streams fill the cores (monitor)
        one_thread_cpus.append(bare_decode_timed(str(path), "NONE")[1])
        start, cpu0 = time.perf_counter(), time.process_time()
        check_file(str(path), CheckConfig(lipsync=config.lipsync))  # `avsync check` as is
        autos.append(time.perf_counter() - start)
        auto_cpus.append(time.process_time() - cpu0)
        clock = StageClock()
        clock.wrap(face.FaceTracker, "__call__", "face")
        clock.wrap(face.MouthFeaturizer, "__call__", "features+face")
        clock.wrap(audio_features, "power_frames", "audio features")
        clock.wrap(audio_features, "speech_band_db", "audio features")
        clock.wrap(audio_features, "envelope", "audio features")
        clock.wrap(classical.ClassicalScorer, "scores", "scoring")
        clock.wrap(infer.ModelScorer, "scores", "scoring")
        clock.wrap(lipsync, "estimate", "scoring")
        try:
            start = time.perf_counter()
            report = check_file(str(path), config)
            walls.append(time.perf_counter() - start)
        finally:
            clock.restore()
        stages.append(clock.seconds)
        offsets.append(report.offset_ms)
        scorer, n_windows = report.method, len(report.windows)
    best = int(np.argmin(walls))
    cpu = stages[best]
    per_stage = {
        "decode (bare, the faster threading)": statistics.median(decode_cpus),
        "face (detector + mesh)": cpu.get("face", 0.0),
        "features (crops, geometry, audio)": cpu.get("features+face", 0.0) - cpu.get("face", 0.0)
        + cpu.get("audio features", 0.0),
        "scoring (curves, estimates)": cpu.get("scoring", 0.0),
    }
    frames = round(media_s * fps)
    return {
        "bench": "lipsync",
        "file": str(path),
        "media_s": round(media_s, 2),
        "size": size,
        "fps": round(fps, 3),
        "repeats": args.repeat,
        "check_lipsync_s": round(walls[best], 3),
        "check_lipsync_x_realtime": round(media_s / walls[best], 1),
        "check_auto_s": round(min(autos), 3),
        "check_auto_x_realtime": round(media_s / min(autos), 1),
        # medians of the interleaved runs: issue 11's figures
        "median": {"bare_decode_s": round(statistics.median(decodes), 3),
                   "bare_decode_cpu_s": round(statistics.median(decode_cpus), 2),
                   "check_s": round(statistics.median(autos), 3),
                   "check_cpu_s": round(statistics.median(auto_cpus), 2),
                   "check_x_realtime": round(media_s / statistics.median(autos), 1),
                   "bare_decode_x_realtime": round(media_s / statistics.median(decodes), 1),
                   "check_vs_bare_decode_wall": round(statistics.median(
                       [a / d for a, d in zip(autos, decodes, strict=True)]), 2)},
        "stage_cpu_s": {k: round(v, 3) for k, v in per_stage.items()},
        # the stages' CPU spread perfectly over every core: no schedule beats this
        "floor_x_realtime_all_cores": round(
            media_s * (os.cpu_count() or 1) / sum(per_stage.values()), 1),
        # a monitor stream's decode, on one thread: cores per stream before any face work
        "one_thread_decode_cpu_s": round(statistics.median(one_thread_cpus), 3),
        "one_thread_decode_cores_per_stream": round(
            statistics.median(one_thread_cpus) / media_s, 3),
        "stage_x_realtime": {k: round(media_s / v, 1) if v > 0 else None
                             for k, v in per_stage.items()},
        "face_ms_per_frame": round(1000 * cpu.get("face", 0.0) / max(1, frames), 2),
        "method": scorer,
        "scoring_ms_per_window": round(1000 * cpu.get("scoring", 0.0) / max(1, n_windows), 2),
        "measured_offset_ms": [None if o is None else round(o, 1) for o in offsets],
        "cpus": os.cpu_count(),
    }


def _rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmRSS:")) / 1024


PEAK_RSS = ("import resource, sys; from avsync.check import check_file; "
            "r = check_file(sys.argv[1]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r.offset_ms)")


def bench_memory(args: argparse.Namespace) -> dict:
    """Peak RSS of `check` (its own process) on the same real head looped to each
    length: flat in file length when nothing grows with the media."""
    runs = []
    for minutes in [float(v) for v in args.minutes.split(",")]:
        path = real_clip(args.clip, args.cache, seconds=minutes * 60)
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], check=True,
                             capture_output=True, text=True).stdout.split()
        runs.append({"minutes": minutes, "peak_rss_mib": round(int(out[0]) / 1024, 1),
                     "offset_ms": None if out[1] == "None" else round(float(out[1]), 1),
                     "wall_s": round(time.perf_counter() - started, 1)})
        print(json.dumps(runs[-1]), file=sys.stderr)
    first, last = runs[0]["peak_rss_mib"], runs[-1]["peak_rss_mib"]
    return {"bench": "memory", "clip": args.clip, "runs": runs,
            "growth_pct": round(100 * (last - first) / first, 1)}


def _monitor_clip(args: argparse.Namespace, jump_at_s: float) -> Path:
    from avsync.synth import TalkingHeadSpec, write_talking_head

    path = (Path(args.cache or tempfile.gettempdir()) / "avsync-bench"
            / f"head-720p25-{args.seconds:g}s-jump{jump_at_s:g}.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        write_talking_head(path, TalkingHeadSpec(
            duration_s=args.seconds + 5, offset_ms=-40.0, jump=(jump_at_s, 160.0),
            size_scale=1.0, canvas=(1280, 720)))
    return path


def bench_monitor(args: argparse.Namespace) -> dict:
    from avsync.monitor.config import parse_stream_arg
    from avsync.monitor.run import Monitor, MonitorOptions

    jump_at = args.seconds * 0.6
    change_ms = 160.0 - -40.0
    clip = (_monitor_clip(args, jump_at) if args.clip == "synthetic" else
            real_clip(args.clip, args.cache, seconds=args.seconds + 5, offset_ms=-40.0,
                      jump=(jump_at, 160.0)))
    runs = []
    for n in [int(v) for v in args.streams.split(",")]:
        specs = [parse_stream_arg(f"s{i}={clip}", {"realtime": True, "scorer": args.scorer})
                 for i in range(n)]
        monitor = Monitor(specs, MonitorOptions(listen=("127.0.0.1", 0),  # any free port
                                                table=False, exit_when_done=False)).start()
        cpu0 = time.process_time()
        lags: list[float] = []
        behind: list[float] = []
        seen_new: dict[str, float] = {}
        before: dict[str, list[float]] = {}  # estimates before the change, per stream
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.seconds:
                time.sleep(0.1)
                for w in monitor.workers:
                    producer = w._producer
                    if producer is None or producer._wall_origin is None:
                        continue
                    media_now = time.monotonic() - producer._wall_origin
                    if media_now > 10 and w.lag_s is not None:  # after the start-up
                        lags.append(w.lag_s)
                        # how far decoding trails the media clock: a backlog before
                        # the rings, which the lag (decoded, not analysed) cannot see
                        rings = producer.rings
                        newest = max(rings.video.end_time, rings.audio.end_time)
                        behind.append(max(0.0, media_now - newest))
                    est = w.tracker.current()
                    if est and media_now <= jump_at:
                        before.setdefault(w.spec.name, []).append(est.offset_ms)
                    # shown: the estimate moved by the change, to within two frames (a
                    # real clip carries its own offset, so the change is what counts)
                    pre = before.get(w.spec.name)
                    if (w.spec.name not in seen_new and media_now > jump_at and est and pre
                            and abs(est.offset_ms - statistics.median(pre[-20:])
                                    - change_ms) <= 80.0):
                        seen_new[w.spec.name] = media_now - jump_at
            stats = [w.stats() for w in monitor.workers]
            outcomes = sum((w.tracker.outcomes for w in monitor.workers), Counter())
        finally:
            monitor.stop()
        cpu = time.process_time() - cpu0
        windows = sum(outcomes.values())
        runs.append({
            "streams": n,
            "lag_s_p95": round(float(np.percentile(lags, 95)), 2) if lags else None,
            "lag_s_max": round(max(lags), 2) if lags else None,
            "decode_behind_s_p95": round(float(np.percentile(behind, 95)), 2)
            if behind else None,
            "decode_behind_s_max": round(max(behind), 2) if behind else None,
            "dropped_video_frames": sum(s.video_dropped for s in stats),
            "dropped_audio_samples": sum(s.audio_dropped_samples for s in stats),
            "windows_measured_share": round(outcomes.get("measured", 0) / max(1, windows), 3),
            "cpu_cores_busy": round(cpu / args.seconds, 2),
            "offset_change_latency_s": sorted(round(v, 1) for v in seen_new.values()),
            "streams_showing_the_change": len(seen_new),
            "rss_mib": round(_rss_mib(), 1),
            "keeps_up": bool(lags) and max(lags) < 2.0 and max(behind) < 1.0
            and sum(s.video_dropped for s in stats) == 0,
        })
        print(json.dumps(runs[-1]), file=sys.stderr)
    kept = [r["streams"] for r in runs if r["keeps_up"]]
    per_stream = None
    if len(runs) >= 2 and runs[-1]["streams"] > runs[0]["streams"]:
        per_stream = round((runs[-1]["rss_mib"] - runs[0]["rss_mib"])
                           / (runs[-1]["streams"] - runs[0]["streams"]), 1)
    return {"bench": "monitor", "clip": str(clip), "size": "1280x720", "fps": 25,
            "seconds_per_run": args.seconds, "offset_change": f"-40 -> +160 ms at {jump_at:g} s",
            "runs": runs, "max_streams_in_real_time": max(kept) if kept else 0,
            "rss_mib_per_stream": per_stream,
            "cpus": os.cpu_count()}


def _batch_folder(args: argparse.Namespace) -> Path:
    """--files short clips: half flash/beep test signals, half synthetic talking heads
    (lip sync, the costly path), 10 s each; copies of 4 + 4 encodes."""
    from avsync.synth import TalkingHeadSpec, TestSignalSpec, write_talking_head
    from avsync.synth.signal import write_test_signal

    folder = Path(args.cache or tempfile.mkdtemp(prefix="avsync-bench-batch-")) / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    masters = []
    for i in range(4):
        signal = folder / f"master-signal{i}.mp4"
        head = folder / f"master-head{i}.mp4"
        if not signal.exists():
            write_test_signal(signal, TestSignalSpec(duration_s=10.0, size=(640, 360),
                                                     offset_ms=-40.0 * i))
        if not head.exists():
            write_talking_head(head, TalkingHeadSpec(offset_ms=40.0 * i, duration_s=10.0))
        masters += [signal, head]
    files = folder / "files"
    files.mkdir(exist_ok=True)
    for i in range(args.files):
        target = files / f"clip{i:03d}.mp4"
        if not target.exists():
            shutil.copy(masters[i % len(masters)], target)
    return files


def _timed_batch(folder: Path, *flags: str) -> tuple[float, float]:
    """(wall s, media s) of one `avsync check FOLDER ... --out` run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.jsonl"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "avsync", "check", str(folder), "-q",
                        "--out", str(out), *flags], capture_output=True, check=False)
        wall = time.perf_counter() - started
        media = sum(json.loads(line).get("duration_s") or 0.0
                    for line in out.read_text().splitlines())
    return wall, media


def bench_batch(args: argparse.Namespace) -> dict:
    folder = _batch_folder(args)
    runs: dict[str, list[float]] = {"jobs1": [], "jobs2": []}
    media_s = 0.0
    for _ in range(args.repeat):  # interleaved, so drift of the machine hits both
        for jobs in (1, 2):
            wall, media_s = _timed_batch(folder, "--jobs", str(jobs))
            runs[f"jobs{jobs}"].append(wall)
    result = {"files": args.files, "media_s": round(media_s, 1), "repeat": args.repeat}
    for name, walls in runs.items():
        wall = statistics.median(walls)
        result[name] = {"wall_s": round(wall, 2),
                        "media_h_per_wall_h": round(media_s / wall, 1)}
    result["speedup_1_to_2"] = round(result["jobs1"]["wall_s"] / result["jobs2"]["wall_s"], 2)
    if args.ray and shutil.which("ray"):
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        port = 26379
        started = time.perf_counter()
        subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--port", str(port),
                        "--node-ip-address", "127.0.0.1", "--include-dashboard=false",
                        "--disable-usage-stats", "--min-worker-port", "31000",
                        "--max-worker-port", "31999"], capture_output=True, env=env,
                       check=True)
        result["ray_cluster_start_s"] = round(time.perf_counter() - started, 1)
        try:
            walls = [_timed_batch(folder, "--ray", f"127.0.0.1:{port}")[0]
                     for _ in range(args.repeat)]
        finally:
            subprocess.run(["ray", "stop", "--force"], capture_output=True, env=env)
        wall = statistics.median(walls)
        result["ray_2cpu"] = {"wall_s": round(wall, 2),
                              "media_h_per_wall_h": round(media_s / wall, 1)}
        # both use two workers: the extra wall time, spread over the files, per worker
        result["ray_overhead_s_per_file"] = round(
            (wall - result["jobs2"]["wall_s"]) * 2 / args.files, 3)
    return result


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
    lip = sub.add_parser("lipsync", help="check on a talking head, split by stage")
    lip.add_argument("clip", nargs="?",
                     help="talking-head clip, 'synthetic', 'real-720p' or 'real-1080p' "
                          "(a real head looped to 60 s; default: the 720p dev clip)")
    lip.add_argument("--repeat", type=int, default=3)
    lip.add_argument("--scorer", choices=["auto", "model", "classical"], default="auto")
    lip.add_argument("--cache", help="folder for generated media (default: temp)")
    mon = sub.add_parser("monitor", help="live streams kept in real time; offset latency")
    mon.add_argument("--streams", default="1,2,4,6", help="stream counts to try")
    mon.add_argument("--seconds", type=float, default=45.0, help="per run (default 45)")
    mon.add_argument("--scorer", choices=["auto", "model", "classical"], default="auto")
    mon.add_argument("--clip", choices=["real-720p", "synthetic"], default="real-720p",
                     help="a real head looped (default) or the synthetic one, 720p25")
    mon.add_argument("--cache", help="folder for generated media (default: temp)")
    mem = sub.add_parser("memory", help="peak RSS of check vs file length")
    mem.add_argument("--minutes", default="1,10", help="file lengths (default 1,10)")
    mem.add_argument("--clip", choices=sorted(REAL_CLIPS), default="real-360p")
    mem.add_argument("--cache", help="folder for generated media (default: temp)")
    bat = sub.add_parser("batch", help="many short files: 1 vs 2 jobs, and Ray")
    bat.add_argument("--files", type=int, default=40)
    bat.add_argument("--repeat", type=int, default=3)
    bat.add_argument("--no-ray", dest="ray", action="store_false",
                     help="skip the local Ray cluster run")
    bat.add_argument("--cache", help="folder for generated media (default: temp)")
    args = parser.parse_args()
    result = {"check": bench_check, "lipsync": bench_lipsync, "monitor": bench_monitor,
              "batch": bench_batch, "memory": bench_memory}[args.bench](args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
