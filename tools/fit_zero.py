#!/usr/bin/env python3
"""Where "in sync" lies for a scorer: the offset it reads on in-sync trusted recordings,
every source weighted equally, a source that stands out flagged and left out.

    python tools/evaluate.py --suite zero --method classical --lead-ms 0 --offsets 0 \\
        --cached --max-clips 400 --out zero.json
    python tools/fit_zero.py zero.json

For the classical scorer run with no articulation lead, minus the zero is the lead to
give it (avsync/estimate/classical.py, ARTICULATION_LEAD_S): the mouth moves before the
sound it shapes, and this is by how much on these recordings. Per source: the median
clip estimate and its bootstrap standard error; a source is flagged when its median
is more than a frame from the mean of the others and more than three standard errors
from it. The zero is the plain mean of the unflagged sources' medians.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FRAME_MS = 40.0


def fit(rows: list[dict], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    sources = {}
    for name in sorted({r["set"] for r in rows}):
        est = np.array([r["clip_estimate_ms"] for r in rows if r["set"] == name
                        and r.get("offset_ms") == 0 and r.get("clip_estimate_ms") is not None])
        if not len(est):
            continue
        boot = [np.median(rng.choice(est, len(est))) for _ in range(500)]
        sources[name] = {"clips": int(len(est)), "median_ms": float(np.median(est)),
                         "se_ms": float(np.std(boot))}
    for name, s in sources.items():
        others = [o["median_ms"] for n, o in sources.items() if n != name]
        gap = s["median_ms"] - float(np.mean(others)) if others else 0.0
        s["stands_out"] = bool(others) and abs(gap) > FRAME_MS and abs(gap) > 3 * max(
            s["se_ms"], 1e-9)
    out = [n for n, s in sources.items() if s["stands_out"]]
    warnings = []
    if len(sources) < 3 and out:  # two that disagree: neither can be called the odd one
        warnings.append(f"the sources disagree by more than a frame ({', '.join(out)}); "
                        "with fewer than three sources none can be left out: averaged")
        out = []
    for name in out:
        sources[name]["flagged"] = True
        warnings.append(f"{name} stands out and is left out of the zero")
    kept = [s["median_ms"] for n, s in sources.items() if n not in out]
    return {"zero_ms": float(np.mean(kept)) if kept else None, "sources": sources,
            "warnings": warnings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluation", help="tools/evaluate.py --out JSON at offset 0")
    args = parser.parse_args()
    result = fit(json.loads(Path(args.evaluation).read_text())["rows"])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
