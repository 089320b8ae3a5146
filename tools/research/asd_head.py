#!/usr/bin/env python3
"""The ablation's pretrained variant: the frozen Light-ASD visual and audio encoders
(tools/research/asd.py, embeddings cached by asd_features.py) under avsync's own
head: a bi-GRU over the visual embeddings, a convolution over the audio ones, and
the same cross-modal attention pair head as the shipped model. Trained like it
(avsync.model.train: masked per-step cross-entropy over shifts, sources equally).

    python tools/research/asd_features.py ../shared/clips/train/news-ar ...  # once
    python tools/research/asd_head.py --clips sel25.txt --steps 4000 --out asd.pt
    python tools/research/offline_eval.py asd.pt --asd
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from avsync.model import data  # noqa: E402
from avsync.model.net import PairHead  # noqa: E402
from avsync.model.spec import ModelSpec  # noqa: E402
from avsync.model.train import pass_accuracy, step_loss, usable_starts  # noqa: E402
from tools.research.asd_features import CACHE, PAD  # noqa: E402

# the ASD audio encoder reads ~4 steps either side: pairs keep that much real audio
SPEC = ModelSpec(audio_context=5)
STEPS = 15


class AsdSyncHead(nn.Module):
    def __init__(self, dim: int = 128, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.video_in = nn.Sequential(nn.Linear(128, dim), nn.ReLU(inplace=True))
        self.rnn = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.audio_in = nn.Sequential(nn.Conv1d(128, dim, 3, padding=1), nn.ReLU(inplace=True))
        self.head = PairHead(SPEC, dim, hidden)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v = self.rnn(self.video_in(self.drop(visual)))[0]
        a = self.audio_in(self.drop(audio).transpose(1, 2)).transpose(1, 2)
        return self.head(self.drop(v), self.drop(a))


def embeddings(path: str) -> tuple[np.ndarray, np.ndarray]:
    key = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    z = np.load(CACHE / f"{Path(path).stem[:40]}-{key}.npz")
    return z["visual"].astype(np.float32), z["audio"].astype(np.float32)


def load_model(state: dict) -> AsdSyncHead:
    model = AsdSyncHead()
    model.load_state_dict(state["state_dict"])
    return model.eval()


def native_scores(model: AsdSyncHead, clip: data.GridClip, path: str) -> np.ndarray:
    """As offline_eval.own_model_scores, from the cached ASD embeddings."""
    from tools.research.offline_eval import BLOCKS, NATIVE

    visual, audio = embeddings(path)
    n, k, m = clip.steps, SPEC.max_shift, SPEC.margin
    firsts = list(range(0, max(1, n - STEPS + 1), STEPS))
    if n > STEPS and firsts[-1] + STEPS < n:
        firsts.append(n - STEPS)
    vs, aus, where = [], [], []
    for first in firsts:
        pick = np.clip(np.arange(first, first + STEPS), 0, n - 1)
        for c in BLOCKS:
            lo = first - c - k - m + PAD
            vs.append(visual[pick])
            aus.append(audio[lo : lo + STEPS + 2 * k + 2 * m])
            where.append((first, c))
    with torch.no_grad():
        out = model(torch.from_numpy(np.stack(vs)), torch.from_numpy(np.stack(aus))).numpy()
    native = np.full((n, 2 * NATIVE + 1), np.nan, np.float32)
    for (first, c), scores in zip(where, out, strict=True):
        for t in range(min(STEPS, n - first)):
            for i in range(SPEC.shifts):
                j = c + i - k
                if abs(j) <= NATIVE:
                    native[first + t, j + NATIVE] = scores[i, t]
    return native


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--clips", help="a file listing the training clips (one path a line)")
    parser.add_argument("--out", default="asd.pt")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    root = Path(__file__).resolve().parents[3] / "shared" / "clips" / "train"
    sources, held = [], []
    listed = set(Path(args.clips).read_text().split()) if args.clips else None
    for name in ("news-ar", "grid-s1"):
        for part, out in ((False, sources), (True, held)):
            items = []
            for p in data.media_files(root / name):
                if listed is not None and str(p) not in listed:
                    continue
                if data.held_out(p.name, 0.1) != part:
                    continue
                clip = data.to_grid(data.cached(p, data.default_cache_dir()), name, SPEC, PAD)
                starts = usable_starts(clip, STEPS)
                if len(starts):
                    items.append((clip, *embeddings(str(p)), starts))
            out.append(items)
        print(f"{name}: {len(sources[-1])} clips, {len(held[-1])} held out", flush=True)

    def batch(pool, n, rng):
        vs, aus, masks = [], [], []
        from avsync.model.train import pair_mask

        for s in rng.integers(len(pool), size=n):
            items = pool[s]
            clip, visual, audio, starts = items[rng.integers(len(items))]
            start = int(rng.choice(starts))
            lo = start - SPEC.max_shift - SPEC.margin + PAD
            vs.append(visual[start : start + STEPS])
            aus.append(audio[lo : lo + STEPS + 2 * SPEC.max_shift + 2 * SPEC.margin])
            masks.append(pair_mask(clip, start, STEPS, SPEC))
        return (torch.from_numpy(np.stack(vs)), torch.from_numpy(np.stack(aus)),
                torch.from_numpy(np.stack(masks)))

    val = batch(held, 1024, np.random.default_rng(1))
    model = AsdSyncHead()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    started, step, best = time.monotonic(), 0, (-1.0, None)
    while step < args.steps:
        progress = step / args.steps
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * progress))
        model.train()
        v, a, mask = batch(sources, args.batch, rng)
        v = v + 0.1 * torch.randn_like(v) * v.std()  # the only augmentation frozen features get
        loss, near = step_loss(model(v, a), mask, SPEC)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 250 == 0:
            model.eval()
            with torch.no_grad():
                scores = torch.cat([model(x, y) for x, y in zip(val[0].split(256),
                                                                 val[1].split(256), strict=True)])
            vl, vn = step_loss(scores, val[2], SPEC)
            acc = pass_accuracy(scores, val[2], SPEC)
            print(f"step {step} {time.monotonic() - started:.0f} s loss {loss.item():.3f} "
                  f"held out loss {vl.item():.3f} step +-1 {vn.mean().item():.3f} "
                  f"pass +-1 {acc:.3f}", flush=True)
            if acc > best[0]:
                best = (acc, {k: x.clone() for k, x in model.state_dict().items()})
    model.load_state_dict(best[1])
    torch.save({"state_dict": model.state_dict(), "summary": {"steps": step,
                "best_pass_within_one": best[0]}}, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
