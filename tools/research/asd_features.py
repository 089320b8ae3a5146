#!/usr/bin/env python3
"""Per-frame embeddings of the pretrained ASD encoders for the ablation: decode each clip
through avsync's face front end, cut the face crop the ASD encoders were trained on
(112x112 grey, the lower-central face), embed it with the frozen visual encoder, and
embed 13 MFCC per 10 ms of the audio with the frozen audio encoder, both on the sync
model's 25 Hz grid. Cached beside the training features.

    python tools/research/asd_features.py ../shared/clips/train/lrs2 ...
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from avsync.features import audio as af  # noqa: E402
from avsync.features.face import FaceTracker, MouthFeaturizer  # noqa: E402
from avsync.features.image import FrameImage  # noqa: E402
from avsync.model import data, inputs  # noqa: E402
from avsync.model.spec import SPEC  # noqa: E402

FACE = 112
CACHE = data.default_cache_dir().parent / "asd"
PAD = 40  # audio steps either side of the clip: every shift block of the offline evaluation


class FaceCropper(MouthFeaturizer):
    """The model front end, plus the main face's ASD crop per frame (kept aside)."""

    def __init__(self) -> None:
        super().__init__(FaceTracker(landmark_every=SPEC.landmark_every))
        self.faces: list[np.ndarray] = []

    def __call__(self, frame):
        record = super().__call__(frame)
        face = np.zeros((FACE, FACE), np.uint8)
        if self.tracker.tracks:
            roi = self.tracker.tracks[0].roi
            s = roi.size / 1.5  # the landmarks' extent (face box)
            side = 0.7 * s  # ASD: the face box x1.4 resized to 224, centre 112 kept
            face = FrameImage(frame).gray(roi.cx - side / 2, roi.cy + 0.2 * s - side / 2,
                                          side, side, FACE, FACE)
        self.faces.append(face)
        return record


def mfcc(samples: np.ndarray, n: int = 13) -> np.ndarray:
    """13 MFCC per 10 ms (26 mel bands, log energy as c0), as python_speech_features."""
    power = af.power_frames(np.append(samples[0], samples[1:] - 0.97 * samples[:-1]))
    edges = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 28)
    hz = 700 * (10 ** (edges / 2595) - 1)
    bins = np.floor((512 + 1) * hz / 16000).astype(int)
    bank = np.zeros((26, 257), np.float32)
    for j in range(26):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        bank[j, lo:mid] = (np.arange(lo, mid) - lo) / max(1, mid - lo)
        bank[j, mid:hi] = (hi - np.arange(mid, hi)) / max(1, hi - mid)
    energy = np.log(power.sum(axis=1) / 512 + 1e-10)
    feat = np.log(power @ bank.T / 512 + 1e-10)
    k = np.arange(26)
    dct = np.cos(np.pi * np.arange(n)[:, None] * (2 * k[None, :] + 1) / 52) * np.sqrt(2 / 26)
    dct[0] /= np.sqrt(2)
    out = feat @ dct.T
    out *= 1 + 11 * np.sin(np.pi * np.arange(n) / 22)  # lifter 22
    out[:, 0] = energy
    return out.astype(np.float32)


def embed(path: str) -> str:
    import torch

    from avsync.media.sources import open_input
    from avsync.pipeline import run_source
    from tools.research import asd

    torch.set_num_threads(1)
    key = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    out = CACHE / f"{Path(path).stem[:40]}-{key}.npz"
    if out.exists():
        return str(out)
    clip = data.cached(path, data.default_cache_dir())
    cropper = FaceCropper()
    opened = open_input(path)
    try:
        run_source(opened, cropper, data._Collector(), hop_s=1.0)
    finally:
        opened.container.close()
    faces = np.stack(cropper.faces)[: len(clip.video_t)]
    grid = data.to_grid(clip, pad=PAD)
    idx, _ = inputs.pick_frames(clip.video_t, grid.t0 + np.arange(grid.steps) * SPEC.step_s)
    with torch.no_grad():
        visual = asd.load("visual")(torch.from_numpy(faces[idx]).float()[None])[0].numpy()
        # audio on the padded grid: 4 MFCC frames per step, silence outside the clip
        chunk = inputs.sample_chunk(clip.audio, clip.audio_t0,
                                    grid.t0 - grid.pad * SPEC.step_s,
                                    (grid.steps + 2 * grid.pad) * SPEC.mels_per_step)
        feats = mfcc(chunk)[: 4 * (grid.steps + 2 * grid.pad)]
        audio = asd.load("audio")(torch.from_numpy(feats)[None])[0].numpy()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(out, visual=visual.astype(np.float16), audio=audio.astype(np.float16),
             faces=faces[idx][:: max(1, len(idx) // 4)])
    return str(out)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # folders, or files listing clips (one path a line)
    paths = [str(p) for arg in sys.argv[1:] for p in (
        data.media_files(arg) if Path(arg).is_dir() else Path(arg).read_text().split())]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for i, _ in enumerate(pool.imap_unordered(embed, paths), 1):
            if i % 100 == 0 or i == len(paths):
                print(f"{i}/{len(paths)}", flush=True)
