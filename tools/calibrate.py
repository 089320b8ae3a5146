#!/usr/bin/env python3
"""Fit a scorer's confidence to how often it is right, from tools/evaluate.py output.

    python tools/evaluate.py ../shared/clips/dev --split train --out train.json
    python tools/calibrate.py train.json --out avsync/model/weights/calibration.json

confidence = 1 - exp(-prominence / scale): the scale is fitted by maximum likelihood
to whether each window's best offset is within +-1 frame of the truth. A window is
"measured" when its confidence reaches MEASURED_CONFIDENCE, so min_prominence =
scale * ln(1 / (1 - MEASURED_CONFIDENCE)). Fit on training clips, never on the
evaluation split; then check the reliability table on the evaluation split.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

MEASURED_CONFIDENCE = 1 / 3


def window_outcomes(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(prominence, within one frame) of every window that had a curve."""
    prominence, hit = [], []
    for row in rows:
        for _status, _offset, _conf, prom, best in row.get("windows", []):
            if best is None or prom is None or not math.isfinite(prom):
                continue
            prominence.append(prom)
            hit.append(abs(best - row["offset_ms"]) <= row["frame_ms"] + 1e-6)
    return np.array(prominence), np.array(hit, float)


def fit_scale(prominence: np.ndarray, hit: np.ndarray) -> float:
    best = (math.inf, 1.0)
    for scale in np.geomspace(1e-3, 1e3, 600):
        p = np.clip(1 - np.exp(-np.maximum(prominence, 0) / scale), 1e-4, 1 - 1e-4)
        nll = -np.mean(hit * np.log(p) + (1 - hit) * np.log(1 - p))
        if nll < best[0]:
            best = (nll, float(scale))
    return best[1]


def reliability(prominence: np.ndarray, hit: np.ndarray, scale: float) -> list[dict]:
    conf = 1 - np.exp(-np.maximum(prominence, 0) / scale)
    out = []
    for lo, hi in zip([0, 0.2, 0.4, 0.6, 0.8, 0.9], [0.2, 0.4, 0.6, 0.8, 0.9, 1.0001],
                      strict=True):
        sel = (conf >= lo) & (conf < hi)
        out.append({"confidence": f"{lo:.1f}-{min(hi, 1):.1f}", "windows": int(sel.sum()),
                    "accuracy": float(hit[sel].mean()) if sel.any() else None})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation", help="JSON written by tools/evaluate.py --out")
    parser.add_argument("--out", help="write calibration.json here")
    args = parser.parse_args()
    data = json.loads(Path(args.evaluation).read_text())
    if data["summary"].get("split") == "eval":
        parser.error("refusing to calibrate on the evaluation split: use --split train output")
    prominence, hit = window_outcomes(data["rows"])
    scale = fit_scale(prominence, hit)
    result = {"confidence_scale": round(scale, 5),
              "min_prominence": round(scale * math.log(1 / (1 - MEASURED_CONFIDENCE)), 5),
              "fitted_on": {"split": data["summary"].get("split"),
                            "clips": data["summary"].get("clips"),
                            "windows": int(len(hit)), "accuracy": float(hit.mean())},
              "reliability_on_fit_data": reliability(prominence, hit, scale)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
