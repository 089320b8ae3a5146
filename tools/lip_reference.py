#!/usr/bin/env python3
"""Print the reference upper face of avsync.features.lips (REFERENCE).

    python tools/lip_reference.py [--clips 12] [--frames 25]

Runs the face mesh over the first frames of a few clips of every training source
(never the validation speakers), then a generalised Procrustes analysis of the stable
upper-face points: every frame aligned to the running mean by a similarity transform,
the mean made mirror-symmetric (so x = 0 is the face's midline and a mirrored crop
mirrors the lips about it), centred, and scaled to an outer-eye-corner distance of 1.
Paste the printed array into avsync/features/lips.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsync.features import lips  # noqa: E402
from avsync.features.face import FaceTracker  # noqa: E402
from avsync.features.image import FrameImage  # noqa: E402
from tools.people import training_sources  # noqa: E402

# STABLE_POINTS's mirror: eye corners swap, midline points stay, face-edge pairs swap
_STABLE_MIRROR = [3, 2, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 15, 18, 17, 20, 19]


def stable_points(path: Path, frames: int) -> list[np.ndarray]:
    tracker = FaceTracker(landmark_every=1)
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= frames:
                break
            for _, points in tracker(FrameImage(frame))[:1]:
                if points is not None:
                    out.append(points[list(lips.STABLE_POINTS)])
    return out


def procrustes_mean(shapes: np.ndarray, rounds: int = 10) -> np.ndarray:
    mean = shapes[0]
    for _ in range(rounds):
        aligned = []
        for s in shapes:
            scale, rotation, shift = lips.similarity(s, mean)
            aligned.append(scale * s @ rotation.T + shift)
        mean = np.mean(aligned, axis=0)
    return symmetric(upright(mean))


def upright(shape: np.ndarray) -> np.ndarray:
    """The shape turned so x runs from the face's left to right side (the mean of the
    mirror pairs' differences), y down its midline, z away from the camera; centred."""
    pairs = [(i, j) for i, j in enumerate(_STABLE_MIRROR) if i < j]
    x = np.mean([shape[j] - shape[i] for i, j in pairs], axis=0)
    x /= np.linalg.norm(x)
    midline = shape[[i for i, j in enumerate(_STABLE_MIRROR) if i == j]]
    centred = midline - midline.mean(axis=0)
    y = np.linalg.svd(centred)[2][0]
    y = y - (y @ x) * x
    y /= np.linalg.norm(y)
    if y @ (shape[10] - shape[11]) < 0:  # nose tip below the forehead: y points down
        y = -y
    z = np.cross(x, y)
    out = (shape - shape.mean(axis=0)) @ np.stack([x, y, z]).T
    return out if out[15:, 2].mean() > out[:4, 2].mean() else out * [1, 1, -1]


def symmetric(shape: np.ndarray) -> np.ndarray:
    """The mean of a shape and its mirror image about x = 0, eye distance 1."""
    mirrored = shape[_STABLE_MIRROR] * np.array([-1.0, 1.0, 1.0])
    out = (shape + mirrored) / 2
    out -= out.mean(axis=0)
    a, b = lips._EYE_CORNERS
    return out / np.linalg.norm(out[a] - out[b])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12, help="clips per source")
    parser.add_argument("--frames", type=int, default=25, help="frames per clip")
    args = parser.parse_args()
    shapes = []
    for name, paths in training_sources().items():
        step = max(1, len(paths) // args.clips)
        for path in paths[::step][: args.clips]:
            shapes += stable_points(path, args.frames)
        print(f"{name}: {len(shapes)} frames so far", file=sys.stderr)
    mean = procrustes_mean(np.array(shapes, np.float64))
    print("REFERENCE = np.array([")
    for row in mean:
        print("    [" + ", ".join(f"{v:+.4f}" for v in row) + "],")
    print("], np.float32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
