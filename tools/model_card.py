#!/usr/bin/env python3
"""Write the model card of the shipped sync model from the files that measured it.

    python tools/model_card.py --checkpoint model.pt --eval eval-model.json \\
        --baseline eval-classical.json --calibration avsync/model/weights/calibration.json \\
        [--uncalibrated eval-model-every-window.json] \\
        --command "python tools/train.py ..." --out avsync/model/weights/CARD.md

Every figure in the card comes from these files (tools/train.py, tools/evaluate.py,
tools/calibrate.py); nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import torch

ROWS = [
    ("clip offset within ±1 frame", "clip_accuracy_1frame", "pct"),
    ("clip median absolute error", "clip_median_abs_error_ms", "ms"),
    ("clips with an estimate", "clip_coverage", "pct"),
    ("shift consistency: estimate moves by the shift ±1 frame", "clip_shift_consistency_1frame",
     "pct"),
    ("window (3 s) best offset within ±1 frame", "window_accuracy_1frame_check_window", "pct"),
    ("window of 15 frames (0.6 s) within ±1 frame", "window_accuracy_1frame_15_frames", "pct"),
    ("window of 5 frames (0.2 s) within ±1 frame", "window_accuracy_1frame_5_frames", "pct"),
    ("windows measured (face, speech, clear peak)", "window_coverage_measured", "pct"),
    ("speed, x real time (2 jobs on 2 cores)", "x_realtime", "x"),
]


def fmt(value, kind: str) -> str:
    if value is None:
        return "n/a"
    return {"pct": f"{100 * value:.1f}%", "ms": f"{value:.1f} ms", "x": f"{value:.1f}x"}[kind]


def _summary(path: Path) -> dict:
    """The evaluation's summary, recomputed from its rows (so older runs get new figures)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tools.evaluate import summarise

    data = json.loads(path.read_text())
    return {**data["summary"], **summarise(data["rows"])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", default="avsync/model/weights/sync.onnx")
    p.add_argument("--eval", required=True, help="tools/evaluate.py output, the model")
    p.add_argument("--baseline", required=True, help="the same, classical scorer")
    p.add_argument("--calibration", required=True)
    p.add_argument("--uncalibrated", help="the model evaluated with min_prominence 0 (every "
                   "window and clip estimated): what its ranking is worth before calibration")
    p.add_argument("--command", required=True, help="the training command that was run")
    p.add_argument("--calibration-how", required=True,
                   help="how the calibration data were made (which model, which clips)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    summary = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["summary"]
    model, base = (_summary(Path(f)) for f in (args.eval, args.baseline))
    every = _summary(Path(args.uncalibrated)) if args.uncalibrated else None
    calib = json.loads(Path(args.calibration).read_text())
    onnx = Path(args.onnx)
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    lines = [
        "# avsync sync model (`sync.onnx`)",
        "",
        f"- Written {datetime.date.today().isoformat()} by `tools/model_card.py`.",
        f"- `sync.onnx`: {onnx.stat().st_size / 1e6:.1f} MB, sha256 `{digest}`; "
        "`sync.pt`: the same weights for torch (fine-tuning, `avsync train`).",
        f"- Network: `avsync.model.net.SyncScorer`, {summary['parameters']:,} parameters: "
        "per-frame 2D CNN on 48x96 grey mouth crops (taken every frame; the face mesh "
        f"that steers them runs every {summary['spec'].get('landmark_every', 1)} frames) "
        "and their frame differences + "
        "temporal convolutions; Conv1d + bidirectional GRU on 40 log-mel bands; "
        "cross-modal attention from each video step to the audio around its partner "
        "under every candidate shift; a bidirectional GRU over time and a score per "
        f"shift. One pass: {summary['spec']['frames']} steps of 40 ms (0.6 s) of video, "
        f"{2 * summary['spec']['max_shift'] + 1} shifts (±"
        f"{summary['spec']['max_shift'] * 40} ms); wider ranges take more passes.",
        "",
        "## Training",
        "",
        f"    {args.command}",
        "",
        f"- Data: the *training* split of `../shared/clips/dev` ({len(summary['clips'])} "
        "clips; the split is by source and speaker, `tools/dev_split.py`): "
        + ", ".join(f"`{c}`" for c in summary["clips"]) + ".",
        f"- Self-supervised: {summary['train_starts']} pass positions with a face and "
        "speech; each pass shifts the audio by a random whole number of steps (the label) "
        "and is scored over all shifts with cross-entropy (the neighbours of the truth "
        "are the hard negatives). Augmentation: crop jitter, flips, blur, lighting, "
        "noise; audio noise (white and low-passed, 5-45 dB SNR) and gain.",
        f"- {summary['steps']} steps of {summary['config']['batch']} in "
        f"{summary['seconds'] / 60:.0f} min on 2 CPU cores, seed "
        f"{summary['config']['seed']}; AdamW lr {summary['config']['lr']}, weight decay "
        f"{summary['config']['weight_decay']}, dropout 0.25. Kept: the step with the best "
        f"held-out accuracy (the last 15% of every training clip: "
        f"{summary['val_starts']} positions), ±1 step "
        f"{100 * (summary.get('best_within_one') or 0):.1f}% per 0.6 s pass.",
        "",
        "## Evaluation",
        "",
        f"`tools/evaluate.py` on the *evaluation* split ({model['clips']} clips of other "
        f"speakers, {model['cases']} cases: offsets "
        + ", ".join(f"{o:+g}" for o in model["offsets_ms"])
        + " ms), side by side with the classical baseline on the same cases:",
        "",
        "| | sync model | classical |" + (" sync model, every window estimated |"
                                             if every else ""),
        "| --- | --- | --- |" + (" --- |" if every else ""),
    ]
    for title, key, kind in ROWS:
        lines.append(f"| {title} | {fmt(model.get(key), kind)} | {fmt(base.get(key), kind)} |"
                     + (f" {fmt(every.get(key), kind)} |" if every else ""))
    if every:
        lines += ["", "The last column: the same model with no confidence threshold "
                  "(min_prominence 0), so every window and clip gets its best offset: what "
                  "the scores rank before calibration decides what to report."]
    lines += [
        "",
        "## Confidence calibration",
        "",
        "confidence = 1 - exp(-prominence / scale), prominence = the peak's score above "
        "the median score away from it; scale fitted by maximum likelihood "
        f"(`tools/calibrate.py`) on {args.calibration_how}: scale "
        f"{calib['confidence_scale']}, a window is measured from prominence "
        f"{calib['min_prominence']} (confidence 1/3). Reliability on the evaluation split "
        "(measured windows: share within ±1 frame per confidence bin):",
        "",
        "| confidence | windows | within ±1 frame |",
        "| --- | --- | --- |",
    ]
    for row in model["calibration"]:
        acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.0f}%"
        lines.append(f"| {row['confidence']} | {row['windows']} | {acc} |")
    lines += ["", "On the data it was fitted on:", "",
              "| confidence | windows | within ±1 frame |", "| --- | --- | --- |"]
    for row in calib["reliability_on_fit_data"]:
        acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.0f}%"
        lines.append(f"| {row['confidence']} | {row['windows']} | {acc} |")
    beats = model["clip_accuracy_1frame"] > base["clip_accuracy_1frame"]
    lines += [
        "",
        "## Status and limits",
        "",
        ("On speakers it was not trained on it beats the classical correlation at clip "
         "level." if beats else
         "Not the default scorer: on speakers it was not trained on it does not beat the "
         "classical correlation at clip level."),
        f"With its calibrated confidence {fmt(model['window_coverage_measured'], 'pct')} "
        "of the windows are measured; the others are reported `low_confidence` rather "
        "than guessed. The training data is the limit: "
        f"{len(summary['clips'])} clips ({summary['train_starts']} pass positions, a "
        "handful of speakers) teach it those speakers. Fine-tune it on an in-sync "
        "archive of your own (`avsync train`) and evaluate on held-out speakers.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
