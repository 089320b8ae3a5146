#!/usr/bin/env python3
"""Who speaks in each training clip: the catalogues' people, and news-ar's anchors by
clustering (they are not labelled).

    python tools/identities.py [--sheet clusters.png]   # counts per source; a contact sheet

The Arabic TV news clips are 256x256 crops of an anchor at the desk, ~1.2 s each, and
the same anchors recur. Each clip is described by its first frame at 24x24 (hair,
skin, clothes: what tells anchors apart at a glance) and the k-means clusters of
those descriptions stand for people. It is an approximation, good enough for a
learning curve over people (tools/train.py --people): the contact sheet shows how
pure the clusters are.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.features import lips  # noqa: E402
from avsync.features.face import FaceTracker  # noqa: E402
from avsync.features.image import FrameImage  # noqa: E402
from tools import people  # noqa: E402

NEWS_ANCHORS = 60  # clusters for news-ar: a sample of 80 clips showed 50 or more people
THUMB = 16
SHAPE_WEIGHT = 1.0  # the face's shape beside its look


def _describe(path: Path, tracker: FaceTracker) -> np.ndarray:
    """The face's shape (face-mesh points, pose and scale taken out) beside its look (a
    thumbnail of the face box: skin, hair, glasses), each part of unit length."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    tracker.reset()
    found = tracker(FrameImage(frame))
    if not found or found[0][1] is None:
        return np.zeros(468 * 3 + THUMB * THUMB * 3)
    points = found[0][1]
    scale, rotation, shift = lips.similarity(points[list(lips.STABLE_POINTS)], lips.REFERENCE)
    shape = (scale * points @ rotation.T + shift).ravel()
    shape = (shape - shape.mean()) / (np.linalg.norm(shape - shape.mean()) + 1e-6)
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    image = FrameImage(frame).rgb(lo[0], lo[1] - 0.3 * (hi[1] - lo[1]), hi[0] - lo[0],
                                  1.3 * (hi[1] - lo[1]), THUMB, THUMB)
    image = image - image.mean(axis=(1, 2), keepdims=True)
    look = image.ravel() / (np.linalg.norm(image) + 1e-6)
    return np.concatenate([SHAPE_WEIGHT * shape, look])


def kmeans(x: np.ndarray, k: int, seed: int = 0, rounds: int = 50) -> np.ndarray:
    """Cluster labels (k-means++ start, Lloyd rounds)."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(k - 1):
        d = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    centres = np.array(centres)
    labels = np.zeros(len(x), int)
    for _ in range(rounds):
        labels = ((centres**2).sum(axis=1)[None] - 2 * x @ centres.T).argmin(axis=1)
        moved = np.array([x[labels == i].mean(axis=0) if (labels == i).any() else centres[i]
                          for i in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return labels


@cache
def _news_clusters(paths: tuple[Path, ...]) -> dict[Path, str]:
    tracker = FaceTracker(landmark_every=1)
    described = np.array([_describe(p, tracker) for p in paths])
    labels = kmeans(described, min(NEWS_ANCHORS, len(paths)))
    return {p: f"news-ar:{label}" for p, label in zip(paths, labels, strict=True)}


def identities(sources: dict[str, list[Path]]) -> dict[Path, str]:
    """Clip -> identity, for the clips of these training sources."""
    out: dict[Path, str] = {}
    for source, paths in sources.items():
        name = source.removeprefix("relative:")
        if name == "news-ar":
            out.update(_news_clusters(tuple(people.training_sources()["news-ar"])))
        else:
            out.update({p: people.identity(name, p) for p in paths})
    return {p: out[p] for paths in sources.values() for p in paths}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", help="write a contact sheet of news-ar's clusters here")
    parser.add_argument("--relative", action="store_true", help="count the relative sources")
    args = parser.parse_args()
    sources = people.training_sources()
    if args.relative:
        sources.update(people.training_sources(relative=True))
    who = identities(sources)
    for source, paths in sources.items():
        print(f"{source}: {len(paths)} clips, {len({who[p] for p in paths})} identities")
    print(f"all: {len(set(who.values()))} identities")
    if args.sheet:
        from PIL import Image

        news = sources["news-ar"]
        rows = sorted({who[p] for p in news}, key=lambda s: int(s.split(":")[1]))[:20]
        sheet = Image.new("RGB", (12 * 64, len(rows) * 64))
        for r, label in enumerate(rows):
            for c, path in enumerate([p for p in news if who[p] == label][:12]):
                with av.open(str(path)) as container:
                    image = next(container.decode(video=0)).to_image().resize((64, 64))
                sheet.paste(image, (c * 64, r * 64))
        sheet.save(args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
