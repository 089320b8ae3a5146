#!/usr/bin/env python3
"""Train the sync model on folders of in-sync clips, one source per folder (CPU is fine).

    python tools/train.py --front fused --steps 3000 --out model.pt   # see the model card
    python tools/train.py ... --resume          # carry on from model.pt.ckpt (a new session)
    python tools/export_onnx.py model.pt avsync/model/weights/sync.onnx

With no folders it trains on the people of ../shared that validation does not hold
(tools/people.py): the trusted sources of clips/train and clips/people (TV news
anchors, GRID, BBC and TED speakers, VoxCeleb2, a Korean studio corpus, broadcast
addresses). Sources are drawn in proportion to the square root of their minutes
(--weights), so the 39 minutes of news anchors do not drown the rest and a 7-second
clip is not drawn as often as a corpus. Features are cached (--cache,
tools/cache_features.py), so a second run does not decode video again.

--own-offsets JSON adds the clips whose own sync is doubtful (lab stimuli, a web
interview, LRS3 re-muxes: tools/people.py) as material for relative shifts only: each
is first re-aligned by its own offset as a model trained on the trusted clips
measured it (a tools/evaluate.py --offsets 0 --out of those clips); clips it could
not measure confidently are left out. They add people without moving where zero lies.
--relative FOLDER does the same for a folder of your own.

--people N trains on about N of the identities (a seeded pick, tools/identities.py):
the learning curve over people of the model card. --data-minutes N: about N minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from avsync.model import data  # noqa: E402
from avsync.model.net import FRONTS  # noqa: E402
from avsync.model.spec import SPEC  # noqa: E402
from avsync.model.train import TrainConfig, train  # noqa: E402
from tools import people  # noqa: E402
from tools.eval_sets import folder_clips  # noqa: E402

EDGE_MS = 560.0  # an own offset this far out sits on the edge of the +-600 ms search


def pick_minutes(folders: dict[str, list[Path]], minutes: float, seed: int,
                 cache: str, mesh_every: int = SPEC.landmark_every) -> dict[str, list[Path]]:
    """About `minutes` of clips, every source cut by the same share (seeded)."""
    lengths = {name: [data.cached(p, cache, mesh_every).duration_s for p in paths]
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


def pick_people(folders: dict[str, list[Path]], count: int, seed: int
                ) -> dict[str, list[Path]]:
    """The clips of about `count` identities (a seeded pick over all sources' people)."""
    from tools.identities import identities

    who = identities(folders)
    names = sorted(set(who.values()))
    chosen = set(np.random.default_rng(seed).permutation(names)[:count].tolist())
    out = {name: [p for p in paths if who[p] in chosen] for name, paths in folders.items()}
    return {name: paths for name, paths in out.items() if paths}


def source_weights(folders: dict[str, list[Path]], how: str, cache: str,
                   mesh_every: int = SPEC.landmark_every) -> dict[str, float]:
    """Draw weight per source: equal, or the square root of its minutes (read from the
    feature cache of the front end trained on, so nothing is decoded twice)."""
    if how == "equal":
        return {name: 1.0 for name in folders}
    return {name: float(np.sqrt(sum(data.cached(p, cache, mesh_every).duration_s
                                    for p in paths) / 60))
            for name, paths in folders.items()}


def own_offsets(path: Path, min_agreement: float, min_windows: int = 3) -> dict[str, float]:
    """Clip file name -> own offset (s), from a tools/evaluate.py --out at offset 0 (only
    clips whose windows mostly agree with the clip's estimate, within a frame, and at
    least min_windows of them, count as measured: one syllable of a lab stimulus is no
    measurement), or from a plain {"clip name": offset_ms} file (what
    --write-own-offsets writes: the shipped model's training reads
    tools/relative-offsets.json)."""
    measured = json.loads(path.read_text())
    if "rows" not in measured:
        return {name: ms / 1000 for name, ms in measured.items()}
    out = {}
    for r in measured["rows"]:
        est = r.get("clip_estimate_ms")
        # at the edge of the range: no peak inside it, so not measured
        if r.get("offset_ms") != 0 or est is None or abs(est) >= EDGE_MS:
            continue
        best = [w[4] for w in r["windows"] if w[4] is not None]
        agree = [abs(b - est) <= r["frame_ms"] for b in best]
        if sum(agree) >= min_windows and np.mean(agree) >= min_agreement:
            out[r["clip"]] = est / 1000
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="one source per folder (default: the "
                        "training people of ../shared, tools/people.py)")
    parser.add_argument("--out", default="model.pt")
    parser.add_argument("--front", default=TrainConfig.front, choices=FRONTS,
                        help="what the video side reads (default %(default)s)")
    parser.add_argument("--aux-weight", type=float, default=TrainConfig.aux_weight,
                        help="> 0: the crop CNN also predicts the lip contour, with this "
                        "loss weight")
    parser.add_argument("--pass-weight", type=float, default=TrainConfig.pass_weight,
                        help="> 0: also the whole pass's cross-entropy, with this weight")
    parser.add_argument("--steps", type=int, default=TrainConfig.max_steps,
                        help="training steps (the learning-rate schedule runs over them)")
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes,
                        help="wall-clock cap: stop after this much time even if steps remain")
    parser.add_argument("--resume", action="store_true",
                        help="carry on from the checkpoint beside --out (OUT.ckpt)")
    parser.add_argument("--pause-at", type=int, metavar="STEP",
                        help="stop at this step, checkpoint written (carry on with --resume)")
    parser.add_argument("--data-minutes", type=float, help="train on about this much media")
    parser.add_argument("--people", type=int, help="train on about this many identities")
    parser.add_argument("--weights", default="sqrt-minutes", choices=["sqrt-minutes", "equal"],
                        help="how often each source is drawn (default %(default)s)")
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--init", help="a checkpoint to start from")
    parser.add_argument("--relative", action="append", default=[], metavar="FOLDER",
                        help="a folder of clips of doubtful sync, re-aligned by --own-offsets")
    parser.add_argument("--own-offsets", help="tools/evaluate.py --offsets 0 --out JSON of "
                        "the relative clips: adds them (default: those of tools/people.py)")
    parser.add_argument("--write-own-offsets", metavar="JSON",
                        help="only write the own offsets --own-offsets reads (a plain "
                        "{clip: ms} map, the clips measured confidently) here, and stop")
    parser.add_argument("--onnx", help="also export the trained model here")
    parser.add_argument("--min-agreement", type=float, default=0.5,
                        help="share of a relative clip's windows that must agree with its "
                        "own offset (within a frame) for it to be used")
    parser.add_argument("--cache", default=str(data.default_cache_dir()),
                        help="feature cache folder (default: %(default)s)")
    parser.add_argument("--mesh-every", type=int, default=SPEC.landmark_every,
                        help="train on the features of a front end with the face mesh every "
                        "N frames (default %(default)s, the shipped one)")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads,
                        help="torch threads (1 when several runs share the cores)")
    args = parser.parse_args()
    if args.folders:
        sources = {Path(f).name: data.media_files(f) for f in args.folders}
    else:
        sources = people.training_sources()
    if args.aux_weight and args.front == "lips":
        parser.error("--aux-weight trains the crop CNN to predict the lip contour: it needs "
                     "--front crop or fused")
    if args.relative and not args.own_offsets:
        parser.error("--relative needs --own-offsets (their own offsets, measured)")
    own: dict[str, float] = {}
    if args.write_own_offsets:
        if not args.own_offsets:
            parser.error("--write-own-offsets needs --own-offsets (the evaluation to read)")
        own = own_offsets(Path(args.own_offsets), args.min_agreement)
        Path(args.write_own_offsets).write_text(json.dumps(
            {k: round(v * 1000, 1) for k, v in sorted(own.items())}, indent=1) + "\n")
        print(f"wrote {args.write_own_offsets}: {len(own)} clips")
        return 0
    if args.own_offsets:
        own = own_offsets(Path(args.own_offsets), args.min_agreement)
        relative = ({f"relative:{Path(f).name}": [Path(c.path) for c in folder_clips(f, "train")]
                     for f in args.relative} if args.relative
                    else people.training_sources(relative=True))
        for name, paths in relative.items():
            sources[name] = [p for p in paths if p.name in own]
            print(f"relative {name}: {len(sources[name])} of {len(paths)} clips re-aligned "
                  "by their own offsets", flush=True)
    if args.people:
        sources = pick_people(sources, args.people, args.seed)
    if args.data_minutes:
        sources = pick_minutes(sources, args.data_minutes, args.seed, args.cache,
                               args.mesh_every)
    config = TrainConfig(max_steps=args.steps, minutes=args.minutes, batch=args.batch,
                         lr=args.lr, seed=args.seed, cache_dir=args.cache,
                         front=args.front, aux_weight=args.aux_weight,
                         pass_weight=args.pass_weight,
                         source_weights=source_weights(sources, args.weights, args.cache,
                                                        args.mesh_every),
                         init_from=args.init, threads=args.threads,
                         pause_at_step=args.pause_at)
    spec = replace(SPEC, landmark_every=args.mesh_every)
    summary = train(sources, Path(args.out), config, log=lambda m: print(m, flush=True),
                    spec=spec, own_offsets=own, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    if args.onnx and not summary.get("paused"):
        from avsync.model.export import export

        diff = export(Path(args.out), Path(args.onnx))
        print(f"wrote {args.onnx} (torch/ONNX max difference {diff:.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
