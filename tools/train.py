#!/usr/bin/env python3
"""Train the sync model on folders of in-sync clips (CPU is fine).

    python tools/train.py ../shared/clips/dev --split train --minutes 40 --out model.pt
    python tools/export_onnx.py model.pt avsync/model/weights/sync.onnx

--split applies the development set's speaker-disjoint split (tools/dev_split.py);
other folders are used whole. Features are cached (--cache), so a second run does
not decode video again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.model.train import TrainConfig, train  # noqa: E402
from tools.dev_split import clips  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--split", default="all", choices=["all", "train", "eval"])
    parser.add_argument("--out", default="model.pt")
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--cache", default=TrainConfig.cache_dir)
    parser.add_argument("--exclude", default="",
                        help="comma-separated name parts of clips to leave out (a fold)")
    args = parser.parse_args()
    leave_out = [part for part in args.exclude.split(",") if part]
    paths = [p for folder in args.folders for p in clips(folder, args.split)
             if not any(part in p.name for part in leave_out)]
    config = TrainConfig(minutes=args.minutes, batch=args.batch, lr=args.lr, seed=args.seed,
                         cache_dir=args.cache)
    summary = train(paths, Path(args.out), config, log=lambda m: print(m, flush=True))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
