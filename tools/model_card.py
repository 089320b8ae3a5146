#!/usr/bin/env python3
"""Write the model card of the shipped sync model from the files that measured it.

    python tools/model_card.py card-inputs.json --out avsync/model/weights/CARD.md

card-inputs.json names the files (every figure in the card comes from them; nothing is
typed in by hand but the prose of `limits`) and the commands that wrote them:
    {"checkpoint": "model.pt", "onnx": "avsync/model/weights/sync.onnx",
     "commit": "...", "machine": "...", "train_command": "...",
     "evaluations": {"after": "val.json", "before": "val-before.json"},  # tools/evaluate.py
     "seen": {"after": "seen.json", "before": "seen-before.json"},  # offline_eval --suite seen
     "unseen": {"after": "val.json", "before": "val-before.json"},  # offline_eval, validation
     "eval_command": "...",
     "ablation": [{"variant": "a", "what": "...", "offline": "a-val.json",
                   "seen": "a-seen.json", "cost": "..."}, ...],  # offline_eval.py --out
     "learning_curve": [{"people": 10, "offline": "...", "seen": "..."}, ...],
     "calibration": "avsync/model/weights/calibration.json", "calibration_command": "...",
     "zero": "zero.json", "zero_command": "...", "limits": ["...", ...]}
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import people  # noqa: E402
from tools.evaluate import TABLE, report  # noqa: E402
from tools.evaluate import cell as fmt  # noqa: E402

ROWS = [row for row in TABLE if row[1] not in ("window_accuracy_1frame_5_frames", "cases")]
OFFLINE_ROWS = [("clip within ±1 frame", "clip_acc", "pct"),
                ("median abs. error", "median_abs_ms", "ms"),
                ("mean signed error", "mean_signed_ms", "sms"),
                ("shift consistency", "shift_consistency", "pct"),
                ("3 s windows", "window_3s", "pct"), ("15-frame windows", "window_15", "pct")]
TRUSTED_SETS = ("grid-more", "lrs3-ted-val", "broadcast-val", "lrs2", "vox-lrw")
DOUBTFUL_SETS = ("dev-eval", "dev-eval-renders")


def _json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def _report(path: str) -> dict:
    return report(_json(path)["rows"])


def seen_figure(summary: dict, key: str = "window_15") -> float | None:
    """A figure on the seen clips (offline_eval --suite seen), every seen set weighted
    alike (news-ar's 235 held-out clips would outweigh the rest)."""
    values = [v[key] for k, v in summary.items() if k.startswith("seen:")
              and isinstance(v, dict) and v.get(key) is not None]
    return float(np.mean(values)) if values else None


def _terms() -> dict[str, str]:
    """Set -> its licence terms, as the catalogues give them (distinct values joined)."""
    out: dict[str, set[str]] = {}
    for catalog in (people.TRAIN / "CATALOG.tsv", people.PEOPLE / "CATALOG.tsv"):
        if catalog.exists():
            with catalog.open() as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    out.setdefault(row["set"], set()).add(row["license"])
    return {k: "; ".join(sorted(v)) for k, v in out.items()}


def split_table(summary: dict) -> list[str]:
    from tools.identities import identities

    terms = _terms()
    trusted, relative = people.training_sources(), people.training_sources(relative=True)
    who = identities({**trusted, **relative})
    lines = ["| set | side | clips | people | sync | terms |",
             "| --- | --- | --- | --- | --- | --- |"]
    used = summary["sources"]
    for group, role in ((trusted, "training, trusted"), (relative, "training, relative")):
        for name, paths in group.items():
            clips = used.get(name, used.get(f"relative:{name}", {})).get("clips", 0)
            folder = name.removesuffix("-relative")
            sync = "where zero lies" if role.endswith("trusted") else "own offset taken out"
            lines.append(f"| {name} | {role} | {clips} of {len(paths)} | "
                         f"{len({who[p] for p in paths})} | {sync} | "
                         f"{terms.get(folder, '?')} |")
    counts = {"grid-more": "4 (GRID s16, s25, s27, s31)", "lrs3-ted-val": "9",
              "broadcast-val": "2", "lrs2": "11", "vox-lrw": "~10"}
    for name, paths in people.validation_sets().items():
        folder = {"lrs3-ted-val": "lrs3-ted", "broadcast-val": "broadcast"}.get(name, name)
        lines.append(f"| {name} | validation, trusted | {len(paths)} | {counts[name]} | "
                     f"absolute | {terms.get(folder, '?')} |")
    for name in ("lrs2", "vox-lrw"):
        lines.append(f"| {name} (clips/train) | validation, trusted | 11 | {counts[name]} | "
                     f"absolute | {terms.get(name, '?')} |")
    lines += ["| dev-eval (clips/dev, evaluation split) | validation, in doubt | 9 | ~7 | "
              "shift consistency; absolute figures apart | see clips/dev/CATALOG.tsv |",
              "| dev-eval-renders | validation, in doubt | 7 | renders | shift consistency | "
              "see clips/dev/CATALOG.tsv |",
              "| dev-train (clips/dev, training split) | confidence calibration | 18 | ~10 | "
              "own offset taken out | see clips/dev/CATALOG.tsv |"]
    return lines


def evaluation_tables(after: dict, before: dict) -> list[str]:
    lines = []
    groups = ["all trusted", *[f"set {s}" for s in TRUSTED_SETS], "in doubt (apart)",
              *[f"set {s}" for s in DOUBTFUL_SETS]]
    shown = [g for g in groups if g in after]
    lines += ["| | " + " | ".join(f"{g.removeprefix('set ')} after | before" for g in shown)
              + " |", "| --- |" + " --- | --- |" * len(shown)]
    for title, key, kind in ROWS:
        cells = []
        for g in shown:
            cells += [fmt(after[g].get(key), kind), fmt(before.get(g, {}).get(key), kind)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return lines


def offline_row(label: str, val: dict, seen: dict | None, extra: str = "") -> str:
    s = val["all trusted"]
    cells = [fmt(s.get(k), kind) for _, k, kind in OFFLINE_ROWS]
    unseen = s.get("window_15")
    known = seen_figure(seen) if seen else None
    gap = f"{100 * (known - unseen):.1f} points" if known is not None and unseen is not None \
        else "n/a"
    return (f"| {label} | " + " | ".join(cells) + f" | {fmt(known, 'pct')} | {gap} |"
            + (f" {extra} |" if extra is not None else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", help="card-inputs.json")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    cfg = _json(args.inputs)
    summary = torch.load(cfg["checkpoint"], map_location="cpu", weights_only=False)["summary"]
    onnx = Path(cfg["onnx"])
    digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
    after, before = (_report(cfg["evaluations"][k]) for k in ("after", "before"))
    seen_after, seen_before = (_json(cfg["seen"][k])["summary"] for k in ("after", "before"))
    calib = _json(cfg["calibration"])
    spec = summary["spec"]
    front = {"crop": "the mouth crop's CNN",
             "lips": "the lip contour (pose-normalised face-mesh points and their motion)",
             "fused": "the mouth crop's CNN and the lip contour (pose-normalised face-mesh "
                      "points and their motion) side by side"}[summary["front"]]
    lines = [
        "# avsync sync model (`sync.onnx`)", "",
        f"- Written {datetime.date.today().isoformat()} by `tools/model_card.py` from "
        f"measured files (commit {cfg.get('commit', '?')}, {cfg.get('machine', '?')}).",
        f"- `sync.onnx`: {onnx.stat().st_size / 1e6:.1f} MB, sha256 `{digest}`; `sync.pt`: "
        "the same weights for torch (fine-tuning: `avsync train`).",
        f"- Network: `avsync.model.net.SyncScorer`, {summary['parameters']:,} parameters, "
        f"front `{summary['front']}`: per frame, {front}; a bidirectional GRU over the "
        "pass; sound: a convolution stack on 40 log-mel bands, one feature per 40 ms that "
        f"reads ±{spec['audio_context']} steps; cross-modal attention from every video step "
        f"to the audio steps within ±{spec['band']} of its partner under every candidate "
        f"shift, then an MLP: a score per (video step, shift). One pass: {spec['frames']} "
        f"steps (0.6 s) × {2 * spec['max_shift'] + 1} shifts (±{spec['max_shift'] * 40} ms); "
        f"the face mesh runs every {spec['landmark_every']} frames (between mesh frames the "
        "lip contour is interpolated, the crop moves on at its last speed).",
        "", "## Who trains, who validates", "",
        "Speaker-disjoint: no person is on both sides (`tools/people.py` declares the split; "
        "`tools/identities.py` counts the people: news-ar's anchors are unlabelled and "
        "counted by clustering their faces, an approximation). Trusted training sources "
        "set where zero lies; relative ones are re-aligned by their own offsets first.", "",
        *split_table(summary), "",
        "The weights inherit these terms: several sources are research-only or "
        "non-commercial (LRS2/LRS3, VoxCeleb2, AIHub) or carry broadcast footage whose "
        "rights the repositories did not clear. Use the shipped model for evaluation and "
        "research, or retrain it on material you hold the rights to (`avsync train`).",
        "", "## Training", "", f"    {cfg['train_command']}", "",
        "- Sources drawn (share of passes): " + ", ".join(
            f"`{n}` {100 * v.get('weight', 0):.1f}% ({v['clips']} clips)"
            for n, v in summary["sources"].items()) + " (held out for progress figures: "
        + ", ".join(f"{k} {v}" for k, v in summary["held_out"].items()) + " clips).",
        "- Self-supervised: every video step of a 0.6 s pass against the audio under all "
        f"{2 * spec['max_shift'] + 1} shifts; the truth is the clip's own alignment, the "
        "other shifts of the same step are the negatives. Pairs whose audio reaches past "
        "a clip are masked. Augmentation: crop shift, scale, turn, mirror (the lip "
        "contour mirrored with it), low resolution, blur, gamma, noise; lip movement "
        "scaled, turned and jittered; noise and a spectral tilt on the sound.",
        f"- {summary['steps']} steps of {summary['config']['batch']} passes, "
        f"{summary['seconds'] / 60:.0f} min on 2 CPU cores, seed {summary['config']['seed']};"
        f" AdamW lr {summary['config']['lr']}, cosine over the steps. A checkpoint every "
        f"{summary['config']['checkpoint_every']} steps: `--resume` carries a run on in a "
        "later session and ends with the model an unbroken run gives "
        "(tests/test_model.py). Kept: the step with the best held-out pass accuracy.",
        "", "## Evaluation", "", f"    {cfg['eval_command']}", "",
        "Every validation clip shifted to 13 offsets from -480 to +480 ms and measured as "
        "`check` measures it (features cached, audio moved in memory). This model "
        "(after) and the model it replaces (before), the same code and clips. Trusted sets "
        "are judged by absolute error; `in doubt` sets (repository crops, renders) by "
        "shift consistency, their absolute figures apart:", "",
        *evaluation_tables(after, before), "",
        "Sources whose mean signed error passes half a frame: "
        + ("; ".join(after["flags"]) if after["flags"] else "none") + ".", "",
        "Per clip: median of (estimate - applied shift), after / before. A steady offset "
        "that both models read may be the clip's own.", "",
        "| clip | after | before |", "| --- | --- | --- |"]
    for clip, c in after["per_clip"].items():
        old = before["per_clip"].get(clip, {}).get("bias_ms")
        lines.append(f"| {c['set']}: {clip} | {fmt(c['bias_ms'], 'sms')} | {fmt(old, 'sms')} |")
    lines += ["", "**Seen against unseen people**, 15-frame windows within ±1 frame, offline "
              "(`tools/research/offline_eval.py --suite seen`: the clips of the training "
              "sources that training held out, mostly people it trained on; unseen: the "
              "trusted validation clips, same scoring):", "",
              "| set | after | before |", "| --- | --- | --- |"]
    for name, v in seen_after.items():
        if name.startswith("seen:") and isinstance(v, dict):
            old = seen_before.get(name, {}).get("window_15")
            lines.append(f"| {name} ({v.get('cases', 0)} cases) | "
                         f"{fmt(v.get('window_15'), 'pct')} | {fmt(old, 'pct')} |")
    lines.append(f"| seen, every set alike | {fmt(seen_figure(seen_after), 'pct')} | "
                 f"{fmt(seen_figure(seen_before), 'pct')} |")
    unseen = [_json(cfg["unseen"][k])["summary"]["all trusted"].get("window_15")
              for k in ("after", "before")]
    lines.append(f"| unseen: all trusted validation | {fmt(unseen[0], 'pct')} | "
                 f"{fmt(unseen[1], 'pct')} |")
    headers = " | ".join(t for t, _, _ in OFFLINE_ROWS)
    lines += ["", "## Fronts compared", "",
              "Offline evaluation (`tools/research/offline_eval.py`: the same clips and "
              "offsets, scored from cached features, each clip's steps scored once; compare "
              "rows within this table), all trusted validation clips; `seen` is the "
              "15-frame figure on the held-out clips of the training sources (every set "
              "weighted alike), the gap is seen minus unseen:", "",
              f"| variant | {headers} | seen 15-frame | gap | cost |",
              "| --- |" + " --- |" * (len(OFFLINE_ROWS) + 3)]
    for row in cfg["ablation"]:
        lines.append(offline_row(f"{row['variant']}: {row['what']}", _json(row["offline"])
                                 ["summary"], _json(row["seen"])["summary"]
                                 if row.get("seen") else None, row.get("cost", "")))
    lines += ["", "## Learning curve over people", "",
              "The shipped configuration trained on the clips of part of the people (a "
              "seeded pick over all sources' identities, `tools/train.py --people N`), same "
              "steps, offline evaluation:", "",
              f"| people | {headers} | seen 15-frame | gap |",
              "| --- |" + " --- |" * (len(OFFLINE_ROWS) + 2)]
    for row in cfg["learning_curve"]:
        lines.append(offline_row(str(row["people"]), _json(row["offline"])["summary"],
                                 _json(row["seen"])["summary"] if row.get("seen") else None,
                                 None))
    zero = _json(cfg["zero"])
    lines += ["", "## Zero", "", f"    {cfg['zero_command']}", "",
              "Median clip estimate at offset 0 per trusted training source (the clips "
              "training held out):", "", "| source | clips | median | standard error |",
              "| --- | --- | --- | --- |"]
    for name, s in zero["sources"].items():
        lines.append(f"| {name} | {s['clips']} | {s['median_ms']:+.1f} ms | "
                     f"{s['se_ms']:.1f} ms |")
    for w in zero.get("warnings", []):
        lines.append(f"\n{w}")
    lines += ["", "## Confidence", "", f"    {cfg['calibration_command']}", "",
              "evidence = the curve's peak prominence × the steps behind it; confidence = "
              "the share of windows with that much evidence whose best offset was within "
              "±1 frame: a monotone (isotonic) fit by `tools/calibrate.py`, "
              f"{len(calib['confidence_knots'])} knots interpolated in log evidence. Fitted "
              f"on {calib['fitted_on']['clips']} clips of the dev training split (people "
              "neither training nor validation has; truth: each clip's own offset plus the "
              "applied shift, since their own sync is doubtful). A window is measured from "
              f"evidence {calib['min_prominence']} (confidence 1/3).", "",
              "Reliability of measured 3 s windows on the trusted validation sets, per "
              "confidence bin: the share within ±1 frame of the applied shift, of the shift "
              "plus the clip's own offset, and on the fitting data:", "",
              "| confidence | validation windows | applied shift | own offset | fit windows |"
              " fit data |", "| --- | --- | --- | --- | --- | --- |"]
    val = after["all trusted"]
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
