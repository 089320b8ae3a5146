"""Break real clips on purpose and check that `avsync check` still answers properly.

Each case takes a clip (generated test signals and talking heads in several
containers, plus real clips with --real), damages it one way, and runs
`python -m avsync check CASE --json` under a time bound. A case passes when the
process ends in time, with an exit code from the documented set (0 pass, 1 fail,
2 unmeasured/uncertain, 3 bad input), without a traceback, and (for exit 3) with one
line on stderr. Exit 4 (internal error), a traceback or a hang is a finding.

    python tools/fuzz.py --cases 300 --seed 1 --out fuzz.jsonl
    python tools/fuzz.py --cases 300 --real ../shared/clips/dev

The damage (seeded, so a finding can be replayed with --seed and --only):
truncate, byte_flips, zero_block, header_garbage, duplicate_block,
swap_container (remuxed into another container, the extension left as it was),
drop_stream (video or audio removed), drop_packets, pts_jump (timestamps jump
forwards or backwards mid-file).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av

ALLOWED_EXITS = {0, 1, 2, 3}
CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".ts": "mpegts", ".mov": "mov"}


@dataclass
class Case:
    index: int
    source: str
    mutation: str
    params: dict
    path: str = ""


@dataclass
class Outcome:
    case: Case
    exit_code: int | None  # None: killed at the time bound
    seconds: float
    stderr_tail: str
    finding: str | None  # None when the answer was proper


# -- sources -------------------------------------------------------------------------------
def make_sources(folder: Path, real: list[Path]) -> list[Path]:
    """Small generated clips in four containers, a talking head, a file with two audio
    tracks, and the real clips given."""
    from avsync.synth import TalkingHeadSpec, TestSignalSpec, write_talking_head
    from avsync.synth.signal import write_test_signal

    out = []
    for ext in CONTAINERS:
        path = folder / f"signal{ext}"
        write_test_signal(path, TestSignalSpec(duration_s=6.0, size=(160, 96), offset_ms=-40.0))
        out.append(path)
    head = folder / "head.mp4"
    write_talking_head(head, TalkingHeadSpec(offset_ms=80.0, duration_s=5.0))
    out.append(head)
    out.append(_two_audio_tracks(out[0], folder / "two-tracks.mkv"))
    for clip in real:
        copy = folder / f"real-{clip.name}"
        shutil.copy(clip, copy)
        out.append(copy)
    return out


def _two_audio_tracks(src: Path, dst: Path) -> Path:
    """src with its audio twice (two tracks): the speech-track probe gets damaged too."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format="matroska") as o:
        video = o.add_stream_from_template(i.streams.video[0])
        audio = [o.add_stream_from_template(i.streams.audio[0]) for _ in range(2)]
        for p in i.demux():
            if p.dts is None:
                continue
            if p.stream.type == "video":
                p.stream = video
                o.mux(p)
            else:
                for target in audio:
                    p.stream = target
                    o.mux(p)
    return dst


# -- damage ----------------------------------------------------------------------------------
def _bytes(mutate: Callable[[bytearray, random.Random], dict]):
    def run(src: Path, dst: Path, rng: random.Random) -> dict:
        data = bytearray(src.read_bytes())
        params = mutate(data, rng)
        dst.write_bytes(bytes(data))
        return params
    return run


def _truncate(data: bytearray, rng: random.Random) -> dict:
    keep = rng.uniform(0.0, 0.98)
    del data[int(len(data) * keep):]
    return {"keep": round(keep, 4)}


def _byte_flips(data: bytearray, rng: random.Random) -> dict:
    n = rng.choice([1, 10, 100, 1000])
    for _ in range(n):
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    return {"flips": n}


def _zero_block(data: bytearray, rng: random.Random) -> dict:
    size = min(len(data), rng.choice([512, 4096, 65536]))
    at = rng.randrange(len(data) - size + 1)
    data[at:at + size] = bytes(size)
    return {"at": at, "size": size}


def _header_garbage(data: bytearray, rng: random.Random) -> dict:
    size = min(len(data), rng.choice([4, 16, 188, 1024]))
    data[:size] = rng.randbytes(size)
    return {"size": size}


def _duplicate_block(data: bytearray, rng: random.Random) -> dict:
    size = min(len(data), rng.choice([188 * 7, 4096, 65536]))
    at = rng.randrange(len(data) - size + 1)
    data[at:at] = data[at:at + size]
    return {"at": at, "size": size}


def _remux(src: Path, dst: Path, fmt: str | None, keep: Callable[[av.Packet], bool],
           shift: Callable[[av.Packet], float], kinds=("video", "audio")) -> None:
    with av.open(str(src)) as i, av.open(str(dst), "w", format=fmt) as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams if s.type in kinds}
        if not out:
            raise ValueError("nothing to keep")
        for p in i.demux():
            if p.dts is None or p.pts is None or p.stream.index not in out or not keep(p):
                continue
            d = round(shift(p) / p.time_base)
            p.pts += d
            p.dts += d
            p.stream = out[p.stream.index]
            o.mux(p)


def _swap_container(src: Path, dst: Path, rng: random.Random) -> dict:
    other = rng.choice([f for e, f in CONTAINERS.items() if e != src.suffix])
    _remux(src, dst, other, lambda p: True, lambda p: 0.0)
    return {"into": other}  # dst keeps src's extension: the name lies about the content


def _drop_stream(src: Path, dst: Path, rng: random.Random) -> dict:
    kind = rng.choice(["video", "audio"])
    kept = ("audio",) if kind == "video" else ("video",)
    _remux(src, dst, CONTAINERS.get(src.suffix), lambda p: True, lambda p: 0.0, kept)
    return {"dropped": kind}


def _drop_packets(src: Path, dst: Path, rng: random.Random) -> dict:
    kind = rng.choice(["video", "audio", "both"])
    share = rng.choice([0.05, 0.3, 0.9])
    _remux(src, dst, CONTAINERS.get(src.suffix),
           lambda p: not ((kind == "both" or p.stream.type == kind) and rng.random() < share),
           lambda p: 0.0)
    return {"stream": kind, "share": share}


def _pts_jump(src: Path, dst: Path, rng: random.Random) -> dict:
    """An MPEG-TS splice: the packets from `at` on are written as a second TS file with
    their timestamps moved, and the two files are joined byte for byte, as a
    broadcast chain joins them (muxers refuse timestamps that go back within one)."""
    kind = rng.choice(["video", "audio", "both"])
    at = rng.uniform(0.5, 4.5)
    jump = rng.choice([-1000.0, -3.0, -0.5, 0.5, 3.0, 1000.0])

    def after(p: av.Packet) -> bool:
        return p.pts is not None and float(p.pts * p.time_base) >= at

    def shift(p: av.Packet) -> float:
        return jump if kind == "both" or p.stream.type == kind else 0.0

    head, tail = dst.with_suffix(".a.ts"), dst.with_suffix(".b.ts")
    _remux(src, head, "mpegts", lambda p: not after(p), lambda p: 0.0)
    _remux(src, tail, "mpegts", after, shift)
    dst.write_bytes(head.read_bytes() + tail.read_bytes())
    head.unlink()
    tail.unlink()
    return {"stream": kind, "at_s": round(at, 3), "jump_s": jump}


MUTATIONS: dict[str, Callable[[Path, Path, random.Random], dict]] = {
    "truncate": _bytes(_truncate),
    "byte_flips": _bytes(_byte_flips),
    "zero_block": _bytes(_zero_block),
    "header_garbage": _bytes(_header_garbage),
    "duplicate_block": _bytes(_duplicate_block),
    "swap_container": _swap_container,
    "drop_stream": _drop_stream,
    "drop_packets": _drop_packets,
    "pts_jump": _pts_jump,
}


# -- running ----------------------------------------------------------------------------------
def make_case(index: int, sources: list[Path], folder: Path, seed: int,
              only: str | None = None) -> Case:
    rng = random.Random(f"{seed}:{index}")
    # every damage in turn (k), and round after round (q) each damage moves on to the
    # next source: every (source, damage) pair comes round whatever the two counts are
    kinds = len(MUTATIONS)
    q, k = divmod(index, kinds)
    source = sources[(q + k) % len(sources)]
    name = only or list(MUTATIONS)[k]
    dst = folder / f"case{index:04d}-{name}{source.suffix}"
    try:
        params = MUTATIONS[name](source, dst, rng)
    except (av.FFmpegError, ValueError) as err:  # the damage itself could not be written
        dst.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 3])
        params = {"fallback": f"truncated to a third ({type(err).__name__})"}
    return Case(index, source.name, name, params, str(dst))


def run_case(case: Case, timeout_s: float) -> Outcome:
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "avsync", "check", case.path, "--json",
                               "-q"], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome(case, None, timeout_s, "", f"hang: no answer in {timeout_s:g} s")
    seconds = time.monotonic() - started
    err = proc.stderr.strip()
    finding = None
    if "Traceback" in proc.stderr:
        finding = "traceback"
    elif proc.returncode not in ALLOWED_EXITS:
        finding = f"exit {proc.returncode}"
    elif proc.returncode == 3 and len(err.splitlines()) != 1:
        finding = "bad input without a one-line error"
    elif proc.returncode in (0, 1, 2):
        try:
            json.loads(proc.stdout)
        except json.JSONDecodeError:
            finding = "exit 0-2 without a JSON report"
    return Outcome(case, proc.returncode, seconds, err[-400:], finding)


def fuzz(cases: int, seed: int, folder: Path, real: list[Path] | None = None,
         timeout_s: float = 60.0, jobs: int = 2, only: str | None = None,
         on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    sources = make_sources(folder, real or [])
    made = [make_case(i, sources, folder, seed, only) for i in range(cases)]
    outcomes = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for outcome in pool.map(lambda c: run_case(c, timeout_s), made):
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "0 cases"
    by_mutation: dict[str, Counter] = {}
    for o in outcomes:
        key = "hang" if o.exit_code is None else f"exit {o.exit_code}"
        by_mutation.setdefault(o.case.mutation, Counter())[key] += 1
    codes = sorted({k for c in by_mutation.values() for k in c})
    lines = ["| damage | cases | " + " | ".join(codes) + " |",
             "| --- | --- | " + " | ".join("---" for _ in codes) + " |"]
    for name, counts in sorted(by_mutation.items()):
        lines.append(f"| {name} | {sum(counts.values())} | "
                     + " | ".join(str(counts.get(c, 0)) for c in codes) + " |")
    findings = [o for o in outcomes if o.finding]
    seconds = sorted(o.seconds for o in outcomes)
    lines.append("")
    lines.append(f"{len(outcomes)} cases: {len(findings)} findings "
                 f"({sum(o.finding == 'traceback' for o in findings)} tracebacks, "
                 f"{sum(o.exit_code is None for o in findings)} hangs); slowest case "
                 f"{seconds[-1]:.1f} s, median {seconds[len(seconds) // 2]:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real", type=Path, help="a folder of real clips to damage too "
                                                  "(its 4 shortest are used)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=sorted(MUTATIONS), help="one kind of damage")
    parser.add_argument("--out", type=Path, help="one JSON line per case")
    parser.add_argument("--keep", type=Path, help="keep the damaged files in this folder")
    args = parser.parse_args(argv)
    real = []
    if args.real:
        clips = [p for p in args.real.rglob("*") if p.suffix.lower() in (".mp4", ".mkv", ".mov")]
        real = sorted(clips, key=lambda p: p.stat().st_size)[:4]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="avsync-fuzz-"))
    folder.mkdir(parents=True, exist_ok=True)
    log = args.out.open("w") if args.out else None

    def report(o: Outcome) -> None:
        if log:
            log.write(json.dumps({**asdict(o), "case": asdict(o.case)}) + "\n")
            log.flush()
        if o.finding:
            print(f"FINDING case {o.case.index} ({o.case.mutation} {o.case.params} of "
                  f"{o.case.source}): {o.finding}: {o.stderr_tail}", file=sys.stderr)

    try:
        outcomes = fuzz(args.cases, args.seed, folder, real, args.timeout, args.jobs,
                        args.only, report)
    finally:
        if log:
            log.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(summary(outcomes))
    return 1 if any(o.finding for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
