#!/usr/bin/env python3
"""Evaluate lip-sync measurement on in-sync clips shifted by known offsets.

    python tools/evaluate.py ../shared/clips/dev --split eval [--offsets -480,...,480]
                             [--jobs 2] [--out eval.json] [--lead-ms X]

For every clip and offset, a copy is made with the audio padded/trimmed by the offset
and the video stream copied untouched (tools/shift_audio.py), and measured by the
same code as `avsync check` (method lipsync). Reported, per method:
- clip-level accuracy within +-1 frame, median absolute error
- per-window accuracy within +-1 frame at the check window, and with 5 and 15 frames
  of video context (SyncNet's protocol: the best offset of every window that has a
  face and speech, confidence ignored)
- coverage (share of windows measured) and confidence calibration (accuracy per bin)
Truth assumes each clip is itself in sync (most likely within +-1 frame).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.check import CheckConfig, _run, lipsync_report  # noqa: E402
from avsync.estimate.offset import NO_FACE, NO_SPEECH, peak  # noqa: E402
from avsync.lipsync import LipSyncAnalyser, LipSyncConfig  # noqa: E402
from avsync.media.sources import open_input  # noqa: E402
from avsync.records import Window  # noqa: E402
from tools.dev_split import clips  # noqa: E402
from tools.shift_audio import shift_audio  # noqa: E402

DEFAULT_OFFSETS = [-480, -320, -200, -120, -80, -40, 0, 40, 80, 120, 200, 320, 480]
CONTEXTS = (5, 15)  # frames of video context per window at 25 fps (0.2 s, 0.6 s), as
# SyncNet/VocaLiST report on LRS2; the sync model needs 0.6 s, so it has no 5-frame figure
CONTEXT_FRAME_S = 0.04
BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0001]


class ProbingAnalyser(LipSyncAnalyser):
    """The check analyser, plus the best offset of short sub-windows (5, 15 frames)."""

    def __init__(self, config: LipSyncConfig, fps: float) -> None:
        super().__init__(config, fps)
        self.context_offsets: dict[int, list[float]] = {n: [] for n in CONTEXTS}
        self._probed_until: float | None = None
        self._probing = False
        # per check window: (prominence, best offset even when not confident) for calibration
        self.window_peaks: list[tuple[float, float | None]] = []

    def score_window(self, window: Window):
        est, curve, track = super().score_window(window)
        if not self._probing:
            best = None if curve is None else peak(curve)[0]
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


def evaluate_one(task: tuple[str, float, dict]) -> dict:
    try:
        return _evaluate_one(task)
    except Exception as err:  # one bad clip must not end the run; it is listed
        return {"clip": Path(task[0]).name, "offset_ms": task[1], "error": str(err)}


def _evaluate_one(task: tuple[str, float, dict]) -> dict:
    clip, offset_ms, overrides = task
    config = CheckConfig(method="lipsync", lipsync=replace(LipSyncConfig(), **overrides))
    with tempfile.TemporaryDirectory() as tmp:
        shifted = shift_audio(clip, Path(tmp) / "shifted.mkv", offset_ms)
        fps = open_input(str(shifted)).info.video.fps or 25.0
        analyser = ProbingAnalyser(config.lipsync, fps)
        started = time.perf_counter()
        info, run = _run(str(shifted), analyser.front_end(), analyser, None,
                         hop_s=config.lipsync.hop_s, window_s=config.lipsync.window_s,
                         audio_margin_s=analyser.audio_margin_s)
        seconds = time.perf_counter() - started
        report = lipsync_report(analyser, config.tolerance, fps, {
            "file": clip, "media": info, "tolerance": config.tolerance,
            "duration_s": info.duration_s, "analysed_s": run.analysed_s, "stats": run.stats})
    frame_ms = 1000.0 / fps
    windows = analyser.result.windows
    return {
        "clip": Path(clip).name, "offset_ms": offset_ms, "fps": fps, "frame_ms": frame_ms,
        "method": report.method,
        "clip_estimate_ms": report.offset_ms, "clip_confidence": report.confidence,
        "windows": [(w.status, None if w.offset_s is None else w.offset_s * 1e3, w.confidence,
                     prominence, None if best is None else best * 1e3)
                    for w, (prominence, best) in zip(windows, analyser.window_peaks,
                                                     strict=True)],
        "window_best_ms": [float(peak(c)[0] * 1e3) for c in analyser.result.curves
                           if np.isfinite(c.scores).any()],
        "context_ms": {str(n): [o * 1e3 for o in v]  # str keys: as JSON stores them
                       for n, v in analyser.context_offsets.items()},
        "seconds": seconds, "media_s": run.analysed_s,
    }


def summarise(rows: list[dict]) -> dict:
    failed = sorted({r["clip"] for r in rows if "error" in r})
    rows = [r for r in rows if "error" not in r]

    def within(est, row):
        return est is not None and abs(est - row["offset_ms"]) <= row["frame_ms"] + 1e-6

    clip_hits = [within(r["clip_estimate_ms"], r) for r in rows]
    errors = [abs(r["clip_estimate_ms"] - r["offset_ms"]) for r in rows
              if r["clip_estimate_ms"] is not None]
    all_windows = [(w, r) for r in rows for w in r["windows"]]
    measured = [(w, r) for w, r in all_windows if w[0] == "measured"]
    scorable = [(w, r) for w, r in all_windows if w[0] not in (NO_FACE, NO_SPEECH)]
    best = [(o, r) for r in rows for o in r["window_best_ms"]]
    out = {
        "clips": len({r["clip"] for r in rows}), "cases": len(rows), "failed_clips": failed,
        "clip_accuracy_1frame": float(np.mean(clip_hits)),
        "clip_coverage": float(np.mean([r["clip_estimate_ms"] is not None for r in rows])),
        "clip_median_abs_error_ms": float(np.median(errors)) if errors else None,
        "window_accuracy_1frame_check_window": float(np.mean([within(o, r) for o, r in best]))
        if best else None,
        "window_coverage_measured": len(measured) / max(1, len(all_windows)),
        "window_share_with_face_and_speech": len(scorable) / max(1, len(all_windows)),
        "media_s": sum(r["media_s"] for r in rows),
        "x_realtime": sum(r["media_s"] for r in rows) / max(1e-9, sum(r["seconds"] for r in rows)),
    }
    # Shift consistency: the estimate moves by the applied shift (est(d) - est(0) = d
    # within one frame). Blind to a clip's own offset, which the protocol assumes is 0
    # but lip-sync renders can miss by a frame.
    at_zero = {r["clip"]: r["clip_estimate_ms"] for r in rows if r["offset_ms"] == 0}
    moved = [abs((r["clip_estimate_ms"] - at_zero[r["clip"]]) - r["offset_ms"])
             <= r["frame_ms"] + 1e-6 for r in rows
             if r["offset_ms"] != 0 and r["clip_estimate_ms"] is not None
             and at_zero.get(r["clip"]) is not None]
    out["clip_shift_consistency_1frame"] = float(np.mean(moved)) if moved else None
    for n in CONTEXTS:
        hits = [within(o, r) for r in rows for o in r["context_ms"][str(n)]]
        out[f"window_accuracy_1frame_{n}_frames"] = float(np.mean(hits)) if hits else None
    calib = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        sel = [within(w[1], r) for w, r in measured if lo <= w[2] < hi]
        calib.append({"confidence": f"{lo:.1f}-{min(hi, 1):.1f}", "windows": len(sel),
                      "accuracy": float(np.mean(sel)) if sel else None})
    out["calibration"] = calib
    out["per_clip"] = _per_clip(rows)
    return out


def _per_clip(rows: list[dict]) -> dict[str, dict]:
    """Per clip: cases within a frame, and the clip's bias, the median of (estimate -
    applied shift). A bias two scorers agree on is more likely the clip's own offset
    (a render a frame off) than a scorer's error; the protocol still counts it as one."""
    out = {}
    for clip in sorted({r["clip"] for r in rows}):
        mine = [r for r in rows if r["clip"] == clip]
        errors = [r["clip_estimate_ms"] - r["offset_ms"] for r in mine
                  if r["clip_estimate_ms"] is not None]
        out[clip] = {
            "cases": len(mine),
            "within_1frame": int(sum(r["clip_estimate_ms"] is not None and abs(
                r["clip_estimate_ms"] - r["offset_ms"]) <= r["frame_ms"] + 1e-6 for r in mine)),
            "estimated": len(errors),
            "bias_ms": float(np.median(errors)) if errors else None,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--split", default="all", choices=["all", "train", "eval"])
    parser.add_argument("--offsets", default=",".join(map(str, DEFAULT_OFFSETS)))
    parser.add_argument("--method", default="classical",
                        choices=["auto", "model", "classical"],
                        help="scorer (default classical, as check; model: the shipped one)")
    parser.add_argument("--model", help="an ONNX sync model other than the shipped one")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-clips", type=int)
    parser.add_argument("--only", default="",
                        help="comma-separated name parts: evaluate only these clips (a fold)")
    parser.add_argument("--window-s", type=float)
    parser.add_argument("--lead-ms", type=float, help="override the articulation lead")
    parser.add_argument("--signal", choices=["level", "change", "both"],
                        help="override the classical scorer's signal")
    parser.add_argument("--out", help="write all rows and the summary as JSON here")
    parser.add_argument("--rows", help="summarise the rows of an earlier --out JSON again "
                        "(no decoding)")
    args = parser.parse_args()
    if args.rows:
        data = json.loads(Path(args.rows).read_text())
        summary = {**data["summary"], **summarise(data["rows"])}
        _print(summary)
        return 0
    overrides = {"scorer": args.method}
    if args.model:
        overrides["model_path"] = args.model
    if args.window_s:
        overrides["window_s"] = args.window_s
    if args.signal:
        overrides["signal"] = args.signal
    if args.lead_ms is not None:
        overrides["lead_s"] = args.lead_ms / 1000
    only = [part for part in args.only.split(",") if part]
    paths = [p for p in clips(args.folder, args.split)
             if not only or any(part in p.name for part in only)][: args.max_clips]
    offsets = [float(v) for v in args.offsets.split(",")]
    tasks = [(str(p), o, overrides) for p in paths for o in offsets]
    print(f"{len(paths)} clips x {len(offsets)} offsets, {args.jobs} jobs", file=sys.stderr)
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for i, row in enumerate(pool.imap_unordered(evaluate_one, tasks), 1):
            rows.append(row)
            print(f"\r{i}/{len(tasks)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    summary = summarise(rows)
    methods = sorted({r["method"] for r in rows if "method" in r})
    summary.update(method=",".join(methods), split=args.split, offsets_ms=offsets,
                   **{k: v for k, v in overrides.items() if k not in ("scorer", "model_path")})
    _print(summary)
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


def _print(summary: dict) -> None:
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if key not in ("calibration", "per_clip"):
            print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else
                  f"{key:<{width}}  {value}")
    print("calibration (measured windows): confidence bin -> accuracy within 1 frame")
    for b in summary["calibration"]:
        acc = "-" if b["accuracy"] is None else f"{b['accuracy']:.2f}"
        print(f"  {b['confidence']}  n={b['windows']:<5} accuracy {acc}")
    print("per clip: cases within 1 frame / with an estimate / cases, median(estimate - shift)")
    for clip, c in summary.get("per_clip", {}).items():
        bias = "-" if c["bias_ms"] is None else f"{c['bias_ms']:+.0f} ms"
        print(f"  {c['within_1frame']:>2}/{c['estimated']:>2}/{c['cases']:>2}  {bias:>8}  {clip}")


if __name__ == "__main__":
    raise SystemExit(main())
