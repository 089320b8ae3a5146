#!/usr/bin/env python3
"""Fit the sync model's confidence to how often it is right, from tools/evaluate.py output.

    python tools/evaluate.py ../shared/clips/dev --split train --method model --out fit.json
    python tools/calibrate.py fit.json --consensus --out avsync/model/weights/calibration.json

evidence = the window curve's peak prominence x the steps behind it. Confidence is
the share of windows with that much evidence whose best offset is within +-1 frame of
the truth: a monotone (isotonic) fit, stored as knots and interpolated in log
evidence, so it levels off where accuracy does instead of promising 0.99. (The
one-parameter 1 - exp(-evidence / scale), also fitted, is kept for reference.) A
window is "measured" when its confidence reaches MEASURED_CONFIDENCE (min_prominence
is that evidence).

Fit on real speakers the model was never trained on and that the validation sets do
not hold (the dev clips' training split: neither the model nor the validation sees
them). Their own sync is doubtful (preprocessed crops, renders), so with --consensus
the truth of a clip is the applied shift plus the clip's own offset, the median of
(estimate - shift) over its cases: the confidence then says how often a window lands
on the clip's answer, which is what a confidence can know. Refuses validation output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.estimate.offset import confidence_from_prominence  # noqa: E402
from tools.evaluate import binned_accuracy, per_clip  # noqa: E402

MEASURED_CONFIDENCE = 1 / 3
# tools/eval_sets.py's validation sets: never fitted on
VALIDATION_SETS = ("grid-more", "lrs3-ted-val", "broadcast-val", "lrs2", "vox-lrw",
                   "dev-eval", "dev-eval-renders")


def window_outcomes(rows: list[dict], consensus: bool) -> tuple[np.ndarray, np.ndarray]:
    """(evidence, within one frame) of every window that had a curve."""
    own = {clip: c["bias_ms"] for clip, c in per_clip(rows).items()
           if consensus and c["bias_ms"] is not None}
    evidence, hit = [], []
    for row in rows:
        truth = row["offset_ms"] + own.get(row["clip"], 0.0)
        for _status, _offset, _conf, ev, best in row.get("windows", []):
            if best is None or ev is None or not math.isfinite(ev):
                continue
            evidence.append(ev)
            hit.append(abs(best - truth) <= row["frame_ms"] + 1e-6)
    return np.array(evidence), np.array(hit, float)


def fit_scale(evidence: np.ndarray, hit: np.ndarray) -> float:
    best = (math.inf, 1.0)
    for scale in np.geomspace(1e-3, 1e3, 600):
        p = np.clip(1 - np.exp(-np.maximum(evidence, 0) / scale), 1e-4, 1 - 1e-4)
        nll = -np.mean(hit * np.log(p) + (1 - hit) * np.log(1 - p))
        if nll < best[0]:
            best = (nll, float(scale))
    return best[1]


def isotonic_knots(evidence: np.ndarray, hit: np.ndarray, min_block: int = 40) -> np.ndarray:
    """(evidence, share right) knots of a non-decreasing fit of hit on evidence.

    Pool-adjacent-violators over windows sorted by evidence, starting from blocks of
    min_block windows so no knot rests on a handful; each block's knot sits at its
    median evidence."""
    order = np.argsort(evidence)
    e, h = np.maximum(evidence[order], 1e-6), hit[order]
    blocks = [[float(h[i:i + min_block].sum()), len(h[i:i + min_block]), i]
              for i in range(0, len(h), min_block)]
    merged: list[list[float]] = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][0] / merged[-2][1] >= merged[-1][0] / merged[-1][1]:
            hits, n, _ = merged.pop()
            merged[-1][0] += hits
            merged[-1][1] += n
    knots = []
    for hits, n, start in merged:
        knots.append((float(np.median(e[start:start + n])), hits / n))
    return np.array(knots)


def confidence_of(evidence: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """What avsync.estimate.offset.confidence_from_prominence gives for each evidence."""
    return np.array([confidence_from_prominence(float(e), 1.0, knots) for e in evidence])


def min_evidence(knots: np.ndarray, level: float) -> float:
    """The evidence at which the fitted confidence reaches level (interpolated)."""
    conf = knots[:, 1]
    if conf[-1] < level:
        return math.inf  # never reaches it: nothing is measured
    i = int(np.argmax(conf >= level))
    if i == 0:  # below the first knot confidence falls linearly to 0
        return float(knots[0, 0] * level / max(conf[0], 1e-9))
    lo, hi = np.log(knots[i - 1, 0]), np.log(knots[i, 0])
    frac = (level - conf[i - 1]) / max(conf[i] - conf[i - 1], 1e-9)
    return float(np.exp(lo + frac * (hi - lo)))


def reliability(evidence: np.ndarray, hit: np.ndarray, knots: np.ndarray) -> list[dict]:
    return binned_accuracy(confidence_of(evidence, knots), hit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation", nargs="+", help="JSON written by tools/evaluate.py --out")
    parser.add_argument("--consensus", action="store_true",
                        help="truth = shift + each clip's own offset (clips of doubtful sync)")
    parser.add_argument("--out", help="write calibration.json here")
    args = parser.parse_args()
    rows, sources = [], []
    for path in args.evaluation:
        data = json.loads(Path(path).read_text())
        meta = data.get("meta", {})
        if meta.get("suite") == "validation" or meta.get("split") == "eval" or any(
                r.get("set") in VALIDATION_SETS for r in data["rows"]):
            parser.error(f"{path}: validation clips; calibrate on clips nobody validates on")
        rows += [r for r in data["rows"] if "error" not in r]
        sources.append(meta.get("folder") or meta.get("suite"))
    evidence, hit = window_outcomes(rows, args.consensus)
    if len(hit) < 200:
        parser.error(f"{len(hit)} windows with a curve: too few to fit a confidence on")
    scale = fit_scale(evidence, hit)
    knots = isotonic_knots(evidence, hit)
    result = {"confidence_scale": round(scale, 5),
              "confidence_knots": [[round(e, 5), round(c, 4)] for e, c in knots],
              "min_prominence": round(min_evidence(knots, MEASURED_CONFIDENCE), 5),
              "fitted_on": {"evaluations": sources, "clips": len({r["clip"] for r in rows}),
                            "windows": int(len(hit)), "truth": "consensus" if args.consensus
                            else "applied shift", "accuracy": float(hit.mean())},
              "reliability_on_fit_data": reliability(evidence, hit, knots)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
