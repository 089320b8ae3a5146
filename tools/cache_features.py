#!/usr/bin/env python3
"""Decode every clip training and evaluation use into the feature cache, once.

    python tools/cache_features.py [--jobs 2] [--mesh-every 2] [--cache DIR]

The clips: the trusted and relative training sources and the validation sets of
tools/people.py, ../shared/clips/train's lrs2 and vox-lrw, and ../shared/clips/dev
(calibration and the doubtful validation clips). Training, tools/evaluate.py
--cached and tools/research/offline_eval.py then read features only. A clip already
cached costs one hash of its bytes; one that fails is listed and skipped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.model import data  # noqa: E402
from avsync.model.spec import SPEC  # noqa: E402
from tools import people  # noqa: E402


def all_clips() -> list[Path]:
    groups = [*people.training_sources().values(),
              *people.training_sources(relative=True).values(),
              *people.validation_sets().values(),
              data.media_files(people.TRAIN / "lrs2"), data.media_files(people.TRAIN / "vox-lrw"),
              data.media_files(people.SHARED / "dev")]
    return list(dict.fromkeys(p for g in groups for p in g))


def _one(task: tuple[Path, str, int]) -> tuple[str, float, str | None]:
    path, cache, mesh = task
    try:
        clip = data.cached(path, cache, landmark_every=mesh)
        return str(path), clip.duration_s, None
    except Exception as err:  # listed, not fatal: one bad clip must not end the run
        return str(path), 0.0, f"{type(err).__name__}: {err}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--mesh-every", type=int, default=SPEC.landmark_every)
    parser.add_argument("--cache", default=str(data.default_cache_dir()))
    args = parser.parse_args()
    clips = all_clips()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started, media, failed = time.monotonic(), 0.0, []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        tasks = [(p, args.cache, args.mesh_every) for p in clips]
        for i, (path, seconds, error) in enumerate(pool.imap_unordered(_one, tasks), 1):
            media += seconds
            if error:
                failed.append(f"{path}: {error}")
            if i % 100 == 0 or i == len(tasks):
                print(f"{i}/{len(tasks)} clips, {media / 60:.1f} min of media, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
