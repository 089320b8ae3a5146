#!/usr/bin/env python3
"""Evaluate lip-sync measurement on in-sync clips shifted by known offsets.

    python tools/evaluate.py --suite validation [--method model|classical] [--out x.json]
    python tools/evaluate.py FOLDER [--split eval] [--kind original] [--offsets ...]
    python tools/evaluate.py --suite zero --offsets 0      # where zero sits, per source
    python tools/evaluate.py --rows x.json                 # summarise again, no decoding

Suites (tools/eval_sets.py): `validation` is what the figures stand for: clips/train/lrs2,
clips/train/vox-lrw and the originals of the dev evaluation split (speakers nobody
trained or tuned on), with the dev split's renders beside them for shift consistency
only; `zero` is the trusted training sources (GRID, Arabic TV news), for fitting where
"in sync" lies.

For every clip and offset, a copy is made with the audio padded/trimmed by the offset
and the video stream copied untouched (tools/shift_audio.py), and measured by the
same code as `avsync check` (method lipsync). `--cached` skips the re-decode: the
front end's features are decoded once per clip (the training cache) and the audio is
moved in memory, with windows cut as the pipeline cuts them; faster, for iterating
(agreement with the full path: see the model card). Reported per set and per kind:
- clip offset within +-1 frame, median absolute error, mean signed error (a bias
  hides inside a good median), clips with an estimate
- shift consistency: the estimate moves by the applied shift (+-1 frame), blind to
  the clip's own offset, so renders count here only
- windows: the check window's best offset, and with 15 and 5 frames of video
  context (SyncNet's protocol: the best offset of every window that has a face and
  speech, confidence ignored); windows measured; confidence calibration
A source whose mean signed error passes half a frame is flagged.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.check import CheckConfig, _run, lipsync_report  # noqa: E402
from avsync.estimate.offset import NO_FACE, NO_SPEECH, peak  # noqa: E402
from avsync.features.face import FEATURE_DTYPE  # noqa: E402
from avsync.lipsync import LipSyncAnalyser, LipSyncConfig, Scorer, make_scorer  # noqa: E402
from avsync.media.sources import ANALYSIS_RATE, open_input  # noqa: E402
from avsync.pipeline import last_window_end  # noqa: E402
from avsync.records import MediaInfo, SourceStats, Window  # noqa: E402
from tools.eval_sets import Clip, folder_clips, suite  # noqa: E402
from tools.shift_audio import shift_audio  # noqa: E402

DEFAULT_OFFSETS = [-480, -320, -200, -120, -80, -40, 0, 40, 80, 120, 200, 320, 480]
CONTEXTS = (5, 15)  # frames of video context per window at 25 fps (0.2 s, 0.6 s), as
# SyncNet/VocaLiST report on LRS2. The sync model scores nothing under 10 steps
# (ModelScorer.min_steps), so its 5-frame row reads n/a.
CONTEXT_FRAME_S = 0.04
BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001]


class ProbingAnalyser(LipSyncAnalyser):
    """The check analyser, plus the best offset of short sub-windows (5, 15 frames)."""

    def __init__(self, config: LipSyncConfig, fps: float, scorer: Scorer | None = None) -> None:
        super().__init__(config, fps, scorer)
        self.context_offsets: dict[int, list[float]] = {n: [] for n in CONTEXTS}
        self._probed_until: float | None = None
        self._probing = False
        # per check window: (evidence, best offset even when not confident)
        self.window_peaks: list[tuple[float, float | None]] = []

    def score_window(self, window: Window):
        est, curve, track = super().score_window(window)
        if not self._probing:
            best = None if curve is None or not np.isfinite(curve.scores).any() \
                else peak(curve)[0]
            self.window_peaks.append((est.prominence, best))
        return est, curve, track

    def feed(self, window: Window) -> None:
        self._probing = False
        super().feed(window)
        self._probing = True
        start = window.t0 if self._probed_until is None else max(window.t0, self._probed_until)
        for n in CONTEXTS:  # non-overlapping sub-windows in the part of the window not seen
            span = n * CONTEXT_FRAME_S
            for t0 in np.arange(start, window.t1 - span + 1e-9, span):
                keep = (window.video_times >= t0) & (window.video_times < t0 + span)
                sub = Window(float(t0), float(t0 + span), window.video_times[keep],
                             window.video_features[keep], window.audio, window.audio_t0,
                             window.audio_rate)
                est, curve, _ = self.score_window(sub)
                if curve is not None and np.isfinite(curve.scores).any():
                    self.context_offsets[n].append(peak(curve)[0])
        self._probed_until = window.t1


def evaluate_one(task: tuple[dict, float, dict, bool]) -> dict:
    clip = task[0]
    try:
        return _evaluate_one(task)
    except Exception as err:  # one bad clip must not end the run; it is listed
        return {**clip, "offset_ms": task[1], "error": f"{type(err).__name__}: {err}"}


def _evaluate_one(task: tuple[dict, float, dict, bool]) -> dict:
    clip, offset_ms, overrides, cached = task
    overrides = dict(overrides)
    front_end = overrides.pop("front_end", None)  # (mesh every, detect every): --cached
    if overrides.pop("deblock", False):  # decode as before issue 22: the in-loop filter on
        from avsync.media import sources

        sources.VIDEO_DECODER_OPTIONS.clear()
    config = CheckConfig(method="lipsync", lipsync=replace(LipSyncConfig(), **overrides))
    started = time.perf_counter()
    if cached:
        analyser, fps, report, analysed_s = _measure_cached(clip["path"], offset_ms, config,
                                                            front_end)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            shifted = shift_audio(clip["path"], Path(tmp) / "shifted.mkv", offset_ms)
            fps = open_input(str(shifted)).info.video.fps or 25.0
            analyser = ProbingAnalyser(config.lipsync, fps)
            info, run = _run(str(shifted), config, analyser.front_end(), analyser, None,
                             hop_s=config.lipsync.hop_s, window_s=config.lipsync.window_s,
                             audio_margin_s=analyser.audio_margin_s)
            report = lipsync_report(analyser, config.tolerance, fps, {
                "file": clip["path"], "media": info, "tolerance": config.tolerance,
                "duration_s": info.duration_s, "analysed_s": run.analysed_s,
                "stats": run.stats})
            analysed_s = run.analysed_s
    seconds = time.perf_counter() - started
    return {
        **clip, "offset_ms": offset_ms, "fps": fps, "frame_ms": 1000.0 / fps,
        "method": report.method, "clip_estimate_ms": report.offset_ms,
        "clip_confidence": report.confidence,
        # per window: status, offset (measured only), confidence, evidence, best offset
        "windows": [(w.status, None if w.offset_s is None else w.offset_s * 1e3, w.confidence,
                     evidence if math.isfinite(evidence) else None,
                     None if best is None else best * 1e3)
                    for w, (evidence, best) in zip(analyser.result.windows,
                                                   analyser.window_peaks, strict=True)],
        "context_ms": {str(n): [o * 1e3 for o in v]  # str keys: as JSON stores them
                       for n, v in analyser.context_offsets.items()},
        "seconds": seconds, "media_s": analysed_s,
    }


def _measure_cached(path: str, offset_ms: float, config: CheckConfig,
                    front_end: tuple[int, int] | None = None):
    """Measure from the cached front-end features with the audio moved in memory."""
    from avsync.model import data

    scorer = make_scorer(config.lipsync)
    mesh, detect = front_end or (scorer.landmark_every, scorer.detect_every)
    features = data.cached(path, data.default_cache_dir(), landmark_every=mesh,
                           detect_every=detect)
    fps = features.fps
    analyser = ProbingAnalyser(config.lipsync, fps, scorer)
    analysed = 0.0
    for window in replay_windows(features, offset_ms, config.lipsync.window_s,
                                 config.lipsync.hop_s, analyser.audio_margin_s):
        analyser.feed(window)
        analysed += min(config.lipsync.hop_s, window.t1 - window.t0)
    info = MediaInfo(path, "cached", features.duration_s, None, None)
    report = lipsync_report(analyser, config.tolerance, fps, {
        "file": path, "media": info, "tolerance": config.tolerance,
        "duration_s": features.duration_s, "analysed_s": analysed, "stats": SourceStats()})
    return analyser, fps, report, analysed


def shifted_audio(audio: np.ndarray, offset_ms: float, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """As tools/shift_audio.py does to a file: > 0 (audio leads) trims the start and pads
    the end with silence, < 0 pads the start; the length stays."""
    n = min(len(audio), round(abs(offset_ms) / 1000 * rate))
    if offset_ms > 0:
        return np.concatenate([audio[n:], np.zeros(n, np.float32)])
    if n:
        return np.concatenate([np.zeros(n, np.float32), audio[: len(audio) - n]])
    return audio


def replay_windows(features, offset_ms: float, window_s: float, hop_s: float,
                   margin_s: float, rate: int = ANALYSIS_RATE) -> Iterator[Window]:
    """The windows avsync.pipeline.run_source would cut from this clip with its audio
    moved by offset_ms: one per hop, reaching window_s back, audio margin_s wider."""
    audio = shifted_audio(features.audio, offset_ms, rate)
    rec = np.zeros(len(features.video_t), FEATURE_DTYPE)
    rec["present"][:, 0] = features.present
    rec["faces_seen"] = features.present
    rec["geometry"][:, 0, 0] = features.opening
    rec["lips"][:, 0] = features.lips
    rec["mouth"][:, 0] = features.mouth
    times = features.video_t
    first = min(float(times[0]), features.audio_t0)
    end = max(float(times[-1]) + 1e-6, features.audio_t0 + len(audio) / rate)
    t = first
    while True:
        t1 = last_window_end(t, hop_s, end, ended=True)
        if t1 <= t:
            break
        t0 = max(first, t1 - window_s)
        keep = (times >= t0) & (times < t1)
        lo = max(0, math.ceil((t0 - margin_s - features.audio_t0) * rate - 1e-9))
        hi = min(len(audio), math.ceil((t1 + margin_s - features.audio_t0) * rate - 1e-9))
        yield Window(t0, t1, times[keep], rec[keep], audio[lo:max(lo, hi)],
                     features.audio_t0 + lo / rate, rate)
        t = t1


def _within(est: float | None, row: dict) -> bool:
    return est is not None and abs(est - row["offset_ms"]) <= row["frame_ms"] + 1e-6


def summarise(rows: list[dict]) -> dict:
    """Figures for one group of rows (a set, a kind, or everything)."""
    failed = sorted({r["clip"] for r in rows if "error" in r})
    rows = [r for r in rows if "error" not in r]
    if not rows:
        return {"clips": 0, "cases": 0, "failed_clips": failed}
    errors = [r["clip_estimate_ms"] - r["offset_ms"] for r in rows
              if r["clip_estimate_ms"] is not None]
    all_windows = [(w, r) for r in rows for w in r["windows"]]
    measured = [(w, r) for w, r in all_windows if w[0] == "measured"]
    scorable = [(w, r) for w, r in all_windows if w[0] not in (NO_FACE, NO_SPEECH)]
    best = [(w[4], r) for w, r in scorable if w[4] is not None]
    out = {
        "clips": len({r["clip"] for r in rows}), "cases": len(rows), "failed_clips": failed,
        "clip_accuracy_1frame": float(np.mean([_within(r["clip_estimate_ms"], r)
                                                for r in rows])),
        "clip_coverage": float(np.mean([r["clip_estimate_ms"] is not None for r in rows])),
        "clip_median_abs_error_ms": float(np.median(np.abs(errors))) if errors else None,
        "clip_mean_signed_error_ms": float(np.mean(errors)) if errors else None,
        "window_accuracy_1frame_check_window": float(np.mean([_within(o, r) for o, r in best]))
        if best else None,
        "window_coverage_measured": len(measured) / max(1, len(all_windows)),
        "window_share_with_face_and_speech": len(scorable) / max(1, len(all_windows)),
        "media_s": sum(r["media_s"] for r in rows),
        "x_realtime": sum(r["media_s"] for r in rows) / max(1e-9, sum(r["seconds"] for r in rows)),
    }
    # Shift consistency: the estimate moves by the applied shift (est(d) - est(0) = d
    # within one frame). Blind to a clip's own offset.
    at_zero = {r["clip"]: r["clip_estimate_ms"] for r in rows if r["offset_ms"] == 0}
    moved = [abs((r["clip_estimate_ms"] - at_zero[r["clip"]]) - r["offset_ms"])
             <= r["frame_ms"] + 1e-6 for r in rows
             if r["offset_ms"] != 0 and r["clip_estimate_ms"] is not None
             and at_zero.get(r["clip"]) is not None]
    out["clip_shift_consistency_1frame"] = float(np.mean(moved)) if moved else None
    for n in CONTEXTS:
        hits = [_within(o, r) for r in rows for o in r["context_ms"][str(n)]]
        out[f"window_accuracy_1frame_{n}_frames"] = float(np.mean(hits)) if hits else None
    out["calibration"] = reliability(measured, {})
    # the same against each clip's own offset (its median estimate - shift): what a
    # confidence can know about, with the clips' own sync taken out
    own = {c: v["bias_ms"] for c, v in per_clip(rows).items() if v["bias_ms"] is not None}
    out["calibration_own_offset"] = reliability(measured, own)
    return out


def reliability(measured: list[tuple], own_ms: dict[str, float]) -> list[dict]:
    """Measured windows binned by confidence -> share within one frame of the truth
    (the applied shift, plus the clip's own offset where own_ms has one)."""
    hit = [abs(w[1] - r["offset_ms"] - own_ms.get(r["clip"], 0.0)) <= r["frame_ms"] + 1e-6
           for w, r in measured]
    return binned_accuracy(np.array([w[2] for w, _ in measured]), np.array(hit, float))


def binned_accuracy(confidence: np.ndarray, hit: np.ndarray) -> list[dict]:
    """Per confidence bin (BINS): how many, and the share of them that were right."""
    out = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        sel = (confidence >= lo) & (confidence < hi)
        out.append({"confidence": f"{lo:.1f}-{min(hi, 1):.1f}", "windows": int(sel.sum()),
                    "accuracy": float(hit[sel].mean()) if sel.any() else None})
    return out


def per_clip(rows: list[dict]) -> dict[str, dict]:
    """Per clip: cases within a frame, and the clip's bias, the median of (estimate -
    applied shift). A bias two scorers agree on is more likely the clip's own offset
    than a scorer's error; the protocol still counts it as one."""
    out = {}
    for clip in sorted({r["clip"] for r in rows}):
        mine = [r for r in rows if r["clip"] == clip and "error" not in r]
        errors = [r["clip_estimate_ms"] - r["offset_ms"] for r in mine
                  if r["clip_estimate_ms"] is not None]
        out[clip] = {
            "set": mine[0]["set"] if mine else None, "cases": len(mine),
            "within_1frame": int(sum(_within(r["clip_estimate_ms"], r) for r in mine)),
            "estimated": len(errors),
            "bias_ms": float(np.median(errors)) if errors else None,
        }
    return out


def report(rows: list[dict]) -> dict:
    """Per set, per kind, and pooled; each source's bias checked against half a frame."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"set {r['set']}", []).append(r)
        groups.setdefault(f"kind {r['kind']}", []).append(r)
    truth = [r for r in rows if r.get("trusted", True)]
    doubt = [r for r in rows if not r.get("trusted", True)]
    out = {"all trusted": summarise(truth),
           **({"in doubt (apart)": summarise(doubt)} if doubt else {}),
           **{k: summarise(v) for k, v in groups.items()}}
    flags = []
    for name, s in out.items():
        bias = s.get("clip_mean_signed_error_ms")
        if name.startswith("set ") and bias is not None:
            frame = float(np.median([r["frame_ms"] for r in groups[name] if "error" not in r]))
            if abs(bias) > frame / 2:
                flags.append(f"{name[4:]}: mean signed error {bias:+.1f} ms is more than "
                             f"half a frame ({frame / 2:.0f} ms)")
    out["flags"] = flags
    out["per_clip"] = per_clip(rows)
    return out


TABLE = [  # (label, key, format): this report's rows, and the model card's
    ("clip offset within ±1 frame", "clip_accuracy_1frame", "pct"),
    ("clip median absolute error", "clip_median_abs_error_ms", "ms"),
    ("clip mean signed error", "clip_mean_signed_error_ms", "sms"),
    ("clips with an estimate", "clip_coverage", "pct"),
    ("shift consistency (±1 frame)", "clip_shift_consistency_1frame", "pct"),
    ("window (check window, 3 s) best offset within ±1 frame",
     "window_accuracy_1frame_check_window", "pct"),
    ("window of 15 frames (0.6 s) within ±1 frame", "window_accuracy_1frame_15_frames", "pct"),
    ("window of 5 frames (0.2 s) within ±1 frame", "window_accuracy_1frame_5_frames", "pct"),
    ("windows measured (face, speech, clear peak)", "window_coverage_measured", "pct"),
    ("cases", "cases", "int"),
]


def cell(value, fmt: str) -> str:
    """One table cell: pct, ms, sms (signed ms) or int; n/a for no value."""
    if value is None:
        return "n/a"
    return {"pct": f"{100 * value:.1f}%", "ms": f"{value:.1f} ms", "sms": f"{value:+.1f} ms",
            "int": f"{value}"}[fmt]


def print_report(out: dict) -> None:
    groups = [k for k in out if k not in ("flags", "per_clip")]
    print("| | " + " | ".join(groups) + " |")
    print("| --- |" + " --- |" * len(groups))
    for label, key, fmt in TABLE:
        print(f"| {label} | " + " | ".join(cell(out[g].get(key), fmt) for g in groups) + " |")
    for flag in out["flags"]:
        print(f"FLAG {flag}")
    nominal = out["all trusted"].get("calibration", [])
    own = out["all trusted"].get("calibration_own_offset", [])
    print("calibration (measured windows, trusted sets): confidence -> share within 1 frame"
          " of the shift / of the shift + the clip's own offset")
    for b, c in zip(nominal, own, strict=False):
        acc = "-" if b["accuracy"] is None else f"{b['accuracy']:.2f}"
        acc_own = "-" if c["accuracy"] is None else f"{c['accuracy']:.2f}"
        print(f"  {b['confidence']}  n={b['windows']:<5} {acc}  {acc_own}")
    print("per clip: cases within 1 frame / with an estimate / cases, median(estimate - shift)")
    for clip, c in out["per_clip"].items():
        bias = "-" if c["bias_ms"] is None else f"{c['bias_ms']:+.0f} ms"
        print(f"  {c['within_1frame']:>2}/{c['estimated']:>2}/{c['cases']:>2}  {bias:>8}  "
              f"{c['set']}: {clip}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a folder of in-sync clips (or --suite)")
    parser.add_argument("--suite", choices=["validation", "seen", "relative", "zero",
                                                      "zero-held-out"],
                        help="the named sets of tools/eval_sets.py")
    parser.add_argument("--split", default="all", choices=["all", "train", "eval"],
                        help="with a folder: the dev clips' split (tools/dev_split.py)")
    parser.add_argument("--kind", choices=["original", "generated"],
                        help="with a folder: only clips of this kind (CATALOG.tsv)")
    parser.add_argument("--offsets", default=",".join(map(str, DEFAULT_OFFSETS)))
    parser.add_argument("--method", default="auto", choices=["auto", "model", "classical"],
                        help="scorer (default auto, as check)")
    parser.add_argument("--model", help="an ONNX sync model other than the shipped one")
    parser.add_argument("--cached", action="store_true",
                        help="decode each clip once and move the audio in memory")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-clips", type=int, help="per set")
    parser.add_argument("--only", default="",
                        help="comma-separated name parts: evaluate only these clips")
    parser.add_argument("--window-s", type=float)
    parser.add_argument("--front-end", metavar="MESH,DETECT",
                        help="with --cached: face mesh every MESH frames, detection every "
                             "DETECT frames (default: the scorer's)")
    parser.add_argument("--deblock", action="store_true",
                        help="decode with the in-loop deblocking filter (the decoder "
                        "before issue 22 skipped it): to see what skipping it moves")
    parser.add_argument("--lead-ms", type=float, help="override the articulation lead")
    parser.add_argument("--out", help="write all rows and the report as JSON here")
    parser.add_argument("--rows", help="report the rows of an earlier --out JSON again")
    args = parser.parse_args()
    if args.rows:
        data = json.loads(Path(args.rows).read_text())
        print_report(report(data["rows"]))
        return 0
    if not args.suite and not args.folder:
        parser.error("give a folder of in-sync clips or --suite")
    overrides: dict = {"scorer": args.method}
    if args.model:
        overrides["model_path"] = args.model
    if args.window_s:
        overrides["window_s"] = args.window_s
    if args.front_end:
        if not args.cached:
            parser.error("--front-end needs --cached")
        overrides["front_end"] = tuple(int(v) for v in args.front_end.split(","))
    if args.lead_ms is not None:
        overrides["lead_s"] = args.lead_ms / 1000
    if args.deblock:
        overrides["deblock"] = True
    clips: list[Clip] = suite(args.suite, args.max_clips) if args.suite else \
        folder_clips(args.folder, args.split, args.kind)[: args.max_clips]
    only = [part for part in args.only.split(",") if part]
    clips = [c for c in clips if not only or any(part in c.clip for part in only)]
    offsets = [float(v) for v in args.offsets.split(",")]
    tasks = [(c.as_dict(), o, overrides, args.cached) for c in clips for o in offsets]
    print(f"{len(clips)} clips x {len(offsets)} offsets, {args.jobs} jobs", file=sys.stderr)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per job
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for i, row in enumerate(pool.imap_unordered(evaluate_one, tasks, chunksize=1), 1):
            rows.append(row)
            print(f"\r{i}/{len(tasks)}", end="", file=sys.stderr)
    print(f"\n{time.monotonic() - started:.0f} s", file=sys.stderr)
    out = report(rows)
    print_report(out)
    if args.out:
        meta = {"method": args.method, "model": args.model, "cached": args.cached,
                "suite": args.suite, "folder": args.folder, "split": args.split,
                "kind": args.kind, "offsets_ms": offsets}
        Path(args.out).write_text(json.dumps({"meta": meta, "report": out, "rows": rows},
                                             indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
