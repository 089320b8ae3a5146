#!/usr/bin/env python3
"""Write the model card of the shipped sync model from the files that measured it.

    python tools/model_card.py card-inputs.json --out avsync/model/weights/CARD.md

card-inputs.json names the files (every figure in the card comes from them; nothing is
typed in by hand) and the commands that wrote them:
    {"checkpoint": "model.pt", "onnx": "avsync/model/weights/sync.onnx",
     "train_command": "...", "machine": "...", "commit": "...",
     "evaluations": {"model": "val-model.json", "classical": "val-classical.json",
                     "before_classical": "...", "before_model": "..."},
     "eval_command": "...",
     "ablation": [{"variant": "...", "what": "...", "data_minutes": 51, "steps": 2500,
                   "offline": "offline.json", "cost": "..."}, ...],
     "learning_curve": [{"data_minutes": 10, "offline": "lc10.json"}, ...],
     "calibration": "avsync/model/weights/calibration.json", "calibration_command": "...",
     "zero": {"model": "zero-model.json", "classical": "zero-classical.json"},
     "zero_command": "..."}
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.evaluate import TABLE, report  # noqa: E402
from tools.evaluate import cell as fmt  # noqa: E402

# the evaluation's rows, less the 5-frame windows (the model scores none) and the count
ROWS = [row for row in TABLE
        if row[1] not in ("window_accuracy_1frame_5_frames", "cases")]
OFFLINE_ROWS = [("clip within ±1 frame", "clip_acc", "pct"),
                ("median abs. error", "median_abs_ms", "ms"),
                ("mean signed error", "mean_signed_ms", "sms"),
                ("shift consistency", "shift_consistency", "pct"),
                ("3 s windows", "window_3s", "pct"), ("15-frame windows", "window_15", "pct")]
SETS = ("all trusted", "set lrs2", "set vox-lrw", "set dev-eval", "set dev-eval-renders")


def _report(path: str) -> dict:
    return report(json.loads(Path(path).read_text())["rows"])


def _offline(path: str) -> dict:
    return json.loads(Path(path).read_text())["summary"]


def _as_offline(path: str) -> dict:
    """A tools/evaluate.py output in the offline table's terms (all trusted clips)."""
    s = _report(path)["all trusted"]
    return {"clip_acc": s["clip_accuracy_1frame"], "median_abs_ms": s["clip_median_abs_error_ms"],
            "mean_signed_ms": s["clip_mean_signed_error_ms"],
            "shift_consistency": s["clip_shift_consistency_1frame"],
            "window_3s": s["window_accuracy_1frame_check_window"],
            "window_15": s["window_accuracy_1frame_15_frames"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", help="card-inputs.json")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    cfg = json.loads(Path(args.inputs).read_text())
    summary = torch.load(cfg["checkpoint"], map_location="cpu", weights_only=False)["summary"]
    onnx = Path(cfg["onnx"])
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    ev = {k: _report(v) for k, v in cfg["evaluations"].items()}
    calib = json.loads(Path(cfg["calibration"]).read_text())
    spec = summary["spec"]
    lines = [
        "# avsync sync model (`sync.onnx`)",
        "",
        f"- Written {datetime.date.today().isoformat()} by `tools/model_card.py` from "
        f"measured files (commit {cfg.get('commit', '?')}, {cfg.get('machine', '?')}).",
        f"- `sync.onnx`: {onnx.stat().st_size / 1e6:.1f} MB, sha256 `{digest}`; `sync.pt`: "
        "the same weights for torch (fine-tuning: `avsync train`).",
        f"- Network: `avsync.model.net.SyncScorer`, {summary['parameters']:,} parameters. "
        "Mouth: a per-frame 2D CNN on the 48x96 grey mouth crop and its change since the "
        "last frame, then a bidirectional GRU over the pass; sound: a convolution stack on "
        "40 log-mel bands, one feature per 40 ms that reads "
        f"±{spec['audio_context']} steps; cross-modal attention from every video step to "
        f"the audio steps within ±{spec['band']} of its partner under every candidate "
        "shift, then an MLP: a score per (video step, shift). One exported pass: "
        f"{spec['frames']} steps (0.6 s), {2 * spec['max_shift'] + 1} shifts "
        f"(±{spec['max_shift'] * 40} ms); wider ranges take more passes. A window's "
        "curve is the mean over its steps of each step's scores centred over the shifts it "
        "can score; its evidence is the peak's prominence times the steps.",
        "",
        "## Training",
        "",
        f"    {cfg['train_command']}",
        "",
        "- Data: trusted real recordings only, every source drawn equally often (so "
        "neither sets where zero lies): "
        + "; ".join(f"`{name}` {v['clips']} clips" for name, v in summary["sources"].items())
        + " (held out for progress figures: "
        + ", ".join(f"{k} {v}" for k, v in summary["held_out"].items()) + " clips).",
        "- Self-supervised: every video step of a 0.6 s pass against the audio under all "
        f"{2 * spec['max_shift'] + 1} shifts; the truth is the clip's own alignment, "
        "the other shifts of the same step are the negatives (the neighbours the hard "
        "ones). Pairs whose audio reaches past a clip are masked, so 1.2 s news clips "
        "train without their edges hinting at the offset. Augmentation: crop shift, "
        "scale, turn and mirror, low resolution, blur, gamma, noise; noise of random "
        "colour at 0-40 dB SNR and a spectral tilt on the sound.",
        f"- {summary['steps']} steps of {summary['config']['batch']} passes, "
        f"{summary['seconds'] / 60:.0f} min on 2 CPU cores, seed "
        f"{summary['config']['seed']}; AdamW lr {summary['config']['lr']}, cosine over "
        "the steps (a run that ends its steps inside its time cap gives the same model on "
        "any machine, only later). Kept: the step with the best held-out pass accuracy.",
        "",
        "## Evaluation",
        "",
        f"    {cfg['eval_command']}",
        "",
        "Validation: clips/train/lrs2 (BBC), clips/train/vox-lrw (VoxCeleb2/LRW) and the "
        "originals of the dev evaluation split: speakers no training, calibration or "
        "tuning saw; every clip shifted to 13 offsets from -480 to +480 ms. The dev "
        "split's renders count for shift consistency only (a generator may shift its "
        "output). Sync model (shipped) beside the classical scorer (lead refitted on "
        "trusted clips) and both as they were before (classical with the 83 ms lead, "
        "the previous model):",
        "",
    ]
    for group in SETS:
        if group not in ev["model"]:
            continue
        lines += [f"**{group}**", "",
                  "| | sync model | classical | classical before | model before |",
                  "| --- | --- | --- | --- | --- |"]
        for title, key, kind in ROWS:
            cells = [fmt(ev[k].get(group, {}).get(key), kind)
                     for k in ("model", "classical", "before_classical", "before_model")]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
        lines.append("")
    flags = ev["model"]["flags"]
    lines += ["Sources whose mean signed error passes half a frame: "
              + ("; ".join(flags) if flags else "none") + ".", ""]
    lines += ["Per clip (sync model / classical): median of (estimate - applied shift). "
              "Where two scorers that share nothing (learned pixels vs. the lip opening's "
              "correlation with the speech envelope) agree on a steady offset, that "
              "offset is more likely the clip's own than either scorer's error; the "
              "figures above still count such clips as misses.", "",
              "| clip | sync model | classical |", "| --- | --- | --- |"]
    for clip, c in ev["model"]["per_clip"].items():
        other = ev["classical"]["per_clip"].get(clip, {}).get("bias_ms")
        lines.append(f"| {c['set']}: {clip} | {fmt(c['bias_ms'], 'sms')} | "
                     f"{fmt(other, 'sms')} |")
    lines += ["", "## Ablation", "",
              "Offline evaluation (`tools/research/offline_eval.py`: the same validation "
              "clips and offsets, scored from cached features, windows cut as check cuts "
              "them, each clip's steps scored once; it reads several points above "
              "tools/evaluate.py, so compare variants within this table, not with the "
              "tables above), all trusted validation clips; a row marked exact is "
              "tools/evaluate.py itself:", "",
              "| variant | data | steps | " + " | ".join(t for t, _, _ in OFFLINE_ROWS)
              + " | cost |", "| --- |" + " --- |" * (len(OFFLINE_ROWS) + 3)]
    for row in cfg["ablation"]:
        s = (_offline(row["offline"])["all trusted"] if row.get("offline") else
             _as_offline(row["evaluation"]) if row.get("evaluation") else {})
        cells = [fmt(s.get(k), kind) for _, k, kind in OFFLINE_ROWS] if s else \
            [row.get("result", "not run")] + [""] * (len(OFFLINE_ROWS) - 1)
        minutes = f"{row['data_minutes']} min" if row.get("data_minutes") else ""
        lines.append(f"| {row['variant']}: {row['what']} | {minutes} | "
                     f"{row.get('steps', '')} | " + " | ".join(cells)
                     + f" | {row.get('cost', '')} |")
    lines += ["", "## Learning curve", "",
              "The shipped configuration trained on part of the data (a seeded pick, "
              "each source cut in proportion), same steps, offline evaluation:", "",
              "| training media | " + " | ".join(t for t, _, _ in OFFLINE_ROWS) + " |",
              "| --- |" + " --- |" * len(OFFLINE_ROWS)]
    for row in cfg["learning_curve"]:
        s = _offline(row["offline"])["all trusted"]
        lines.append(f"| {row['data_minutes']} min | "
                     + " | ".join(fmt(s.get(k), kind) for _, k, kind in OFFLINE_ROWS) + " |")
    zero = {k: json.loads(Path(v).read_text()) for k, v in cfg["zero"].items()}
    lines += ["", "## Zero", "", f"    {cfg['zero_command']}", "",
              "Median clip estimate at offset 0 per trusted source (clips the training held "
              "out, for the model; the classical scorer with no lead, whose zero becomes "
              "its lead):", "", "| scorer | source | clips | median | standard error |",
              "| --- | --- | --- | --- | --- |"]
    for scorer, z in zero.items():
        for name, s in z["sources"].items():
            lines.append(f"| {scorer} | {name} | {s['clips']} | {s['median_ms']:+.1f} ms | "
                         f"{s['se_ms']:.1f} ms |")
    for scorer, z in zero.items():
        for w in z.get("warnings", []):
            lines.append(f"\n{scorer}: {w}")
    lines += ["", "## Confidence", "", f"    {cfg['calibration_command']}", "",
              "evidence = the curve's peak prominence × the steps behind it; confidence = "
              "the share of windows with that much evidence whose best offset was within "
              "±1 frame: a monotone (isotonic) fit by `tools/calibrate.py`, "
              f"{len(calib['confidence_knots'])} knots interpolated in log evidence, so "
              "it levels off where accuracy does. Fitted on "
              f"{calib['fitted_on']['clips']} clips of the dev training split (real "
              "speakers neither the model nor the validation saw; truth: each clip's own "
              "offset plus the applied shift, since their own sync is doubtful). A window "
              f"is measured from evidence {calib['min_prominence']} (confidence 1/3).", "",
              "Reliability of measured 3 s windows on the validation sets, per confidence "
              "bin: the share within ±1 frame of the applied shift (nominal truth), of the "
              "shift plus the clip's own offset (its median estimate - shift: what a "
              "confidence can know about), and on the fitting data:",
              "", "| confidence | validation windows | nominal truth | own offset | "
              "fit windows | fit data |", "| --- | --- | --- | --- | --- | --- |"]
    val = ev["model"]["all trusted"]
    for v, o, f in zip(val["calibration"], val["calibration_own_offset"],
                       calib["reliability_on_fit_data"], strict=True):
        cells = ["-" if b["accuracy"] is None else f"{100 * b['accuracy']:.0f}%"
                 for b in (v, o, f)]
        lines.append(f"| {v['confidence']} | {v['windows']} | {cells[0]} | {cells[1]} | "
                     f"{f['windows']} | {cells[2]} |")
    lines += ["", "## Status and limits", ""] + cfg.get("limits", []) + [""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
