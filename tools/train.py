#!/usr/bin/env python3
"""Train the sync model on folders of in-sync clips, one source per folder (CPU is fine).

    python tools/train.py --steps 2500 --out model.pt   # the shipped model (sources below)
    python tools/export_onnx.py model.pt avsync/model/weights/sync.onnx

With no folders it trains on the trusted real recordings of ../shared/clips/train:
`news-ar` (Arabic TV news anchors) and `grid-s1` (a studio corpus speaker), each
drawn equally often, so neither sets where "in sync" lies. The validation speakers
(lrs2, vox-lrw, the dev evaluation split) are never among them. Features are cached
(--cache), so a second run does not decode video again.

--data-minutes N trains on about N minutes of the clips (a seeded pick, each source
cut in proportion): the learning curve of the model card.

--relative FOLDER adds clips whose own sync is doubtful (renders, preprocessed crops)
as material for relative shifts only: each is first re-aligned by its own offset as a
model trained on trusted clips measured it (--own-offsets: a tools/evaluate.py --out
of those clips at offset 0); clips it could not measure confidently are left out. So
they add speakers and conditions without moving where zero lies. Only the dev clips'
training split is taken from ../shared/clips/dev.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from avsync.model import data  # noqa: E402
from avsync.model.train import TrainConfig, train  # noqa: E402
from tools.eval_sets import SHARED, folder_clips  # noqa: E402

TRUSTED_SOURCES = ("news-ar", "grid-s1")
EDGE_MS = 560.0  # an own offset this far out sits on the edge of the +-600 ms search


def pick_minutes(folders: dict[str, list[Path]], minutes: float, seed: int,
                 cache: str) -> dict[str, list[Path]]:
    """About `minutes` of clips, every source cut by the same share (seeded)."""
    lengths = {name: [data.cached(p, cache).duration_s for p in paths]
               for name, paths in folders.items()}
    total = sum(sum(v) for v in lengths.values()) / 60
    if total <= 0:
        raise SystemExit("no clips with media to pick from")
    share = min(1.0, minutes / total)
    rng = np.random.default_rng(seed)
    out = {}
    for name, paths in folders.items():
        order = rng.permutation(len(paths))
        budget, took = share * sum(lengths[name]), []
        for i in order:
            if budget <= 0:
                break
            took.append(paths[i])
            budget -= lengths[name][i]
        out[name] = sorted(took)
    return out


def own_offsets(path: Path, min_agreement: float) -> dict[str, float]:
    """Clip file name -> own offset (s), from an evaluation at offset 0; only clips whose
    windows mostly agree with the clip's estimate (within a frame) count as measured."""
    out = {}
    for r in json.loads(path.read_text())["rows"]:
        est = r.get("clip_estimate_ms")
        # at the edge of the range: no peak inside it, so not measured
        if r.get("offset_ms") != 0 or est is None or abs(est) >= EDGE_MS:
            continue
        best = [w[4] for w in r["windows"] if w[4] is not None]
        agree = np.mean([abs(b - est) <= r["frame_ms"] for b in best]) if best else 0.0
        if agree >= min_agreement:
            out[r["clip"]] = est / 1000
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="one source per folder (default: "
                        f"{', '.join(TRUSTED_SOURCES)} in ../shared/clips/train)")
    parser.add_argument("--out", default="model.pt")
    parser.add_argument("--steps", type=int, default=TrainConfig.max_steps,
                        help="training steps (the learning-rate schedule runs over them)")
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes,
                        help="wall-clock cap: stop after this much time even if steps remain")
    parser.add_argument("--data-minutes", type=float, help="train on about this much media")
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--geometry", action="store_true",
                        help="also feed the lip opening (the landmark variant)")
    parser.add_argument("--init", help="a checkpoint to start from")
    parser.add_argument("--relative", action="append", default=[], metavar="FOLDER",
                        help="clips of doubtful sync, re-aligned by --own-offsets")
    parser.add_argument("--own-offsets", help="tools/evaluate.py --offsets 0 --out JSON of "
                        "the --relative clips")
    parser.add_argument("--min-agreement", type=float, default=0.5,
                        help="share of a --relative clip's windows that must agree with its "
                        "own offset (within a frame) for it to be used")
    parser.add_argument("--cache", default=str(data.default_cache_dir()),
                        help="feature cache folder (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads,
                        help="torch threads (1 when several runs share the cores)")
    args = parser.parse_args()
    folders = [Path(f) for f in args.folders] or [SHARED / "train" / s for s in TRUSTED_SOURCES]
    sources = {f.name: data.media_files(f) for f in folders}
    if args.data_minutes:
        sources = pick_minutes(sources, args.data_minutes, args.seed, args.cache)
    own: dict[str, float] = {}
    if args.relative:
        if not args.own_offsets:
            parser.error("--relative needs --own-offsets (their own offsets, measured)")
        own = own_offsets(Path(args.own_offsets), args.min_agreement)
        for folder in map(Path, args.relative):
            paths = [Path(c.path) for c in folder_clips(folder, "train") if c.clip in own]
            sources[f"relative:{folder.name}"] = paths
            print(f"relative {folder}: {len(paths)} clips re-aligned by their own offsets",
                  flush=True)
    config = TrainConfig(max_steps=args.steps, minutes=args.minutes, batch=args.batch,
                         lr=args.lr, seed=args.seed, cache_dir=args.cache,
                         geometry=args.geometry, init_from=args.init,
                         threads=args.threads)
    summary = train(sources, Path(args.out), config, log=lambda m: print(m, flush=True),
                    own_offsets=own)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
