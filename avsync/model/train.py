"""Self-supervised training of the sync scorer from any folder of in-sync clips.

Every pass is a positive at its true alignment and, through the softmax over shifts,
2*max_shift negatives at other offsets of the same window (the ones next to the
truth are the hard negatives). The label is the shift applied to the audio, drawn
uniformly, so the network cannot learn a favourite offset. The last `val_share` of
every clip is held out for the progress figures (for speaker-disjoint figures use
tools/evaluate.py on clips of other speakers).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avsync.model import data
from avsync.model.net import SyncScorer, parameter_count
from avsync.model.spec import SPEC


@dataclass
class TrainConfig:
    minutes: float = 30.0  # wall-clock budget; training stops after the step that ends it
    max_steps: int = 100_000
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    dropout: float = 0.25
    seed: int = 0
    val_share: float = 0.15
    threads: int = 2
    log_every: int = 50
    val_every: int = 250
    cache_dir: str = str(Path.home() / ".cache" / "avsync" / "features")
    init_from: str | None = None  # a checkpoint to fine-tune (e.g. the shipped sync.pt)
    augment: data.Augment = field(default_factory=data.Augment)


@dataclass
class _Split:
    clips: list[data.ClipFeatures]
    train: list[np.ndarray]
    val: list[np.ndarray]


def _split(clips: list[data.ClipFeatures], share: float) -> _Split:
    train, val = [], []
    for clip in clips:
        starts = data.usable_starts(clip)
        cut = clip.video_t[0] + (1 - share) * clip.duration_s
        # passes reach max_shift steps of audio either side: keep a gap at the cut
        gap = (SPEC.frames + SPEC.max_shift) * SPEC.step_s
        train.append(starts[starts + gap < cut])
        val.append(starts[starts > cut])
    return _Split(clips, train, val)


def _batch(split: _Split, which: list[np.ndarray], n: int, rng: np.random.Generator,
           augment: data.Augment | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    weights = np.array([len(s) for s in which], float)
    picks = rng.choice(len(which), size=n, p=weights / weights.sum())
    mouths, mels, labels = [], [], []
    for c in picks:
        start = float(rng.choice(which[c]))
        shift = int(rng.integers(-SPEC.max_shift, SPEC.max_shift + 1))
        m, a = data.training_pass(split.clips[c], start, shift, rng, augment)
        mouths.append(m)
        mels.append(a)
        labels.append(shift + SPEC.max_shift)
    return (torch.from_numpy(np.stack(mouths)), torch.from_numpy(np.stack(mels)),
            torch.tensor(labels))


def _within_one(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((logits.argmax(1) - labels).abs() <= 1).float().mean())


def train(paths: list[Path], out: Path, config: TrainConfig, log=print) -> dict:
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    clips = []
    for i, path in enumerate(paths, 1):
        log(f"features {i}/{len(paths)}: {path.name}")
        try:
            clips.append(data.cached(path, config.cache_dir))
        except Exception as err:  # one unreadable clip must not end the run
            log(f"  skipped: {err}")
    split = _split(clips, config.val_share)
    n_train, n_val = sum(map(len, split.train)), sum(map(len, split.val))
    if n_train == 0:
        raise ValueError("no usable training passes (face and speech): check the clips")
    log(f"{len(clips)} clips, {n_train} training starts, {n_val} held-out starts")
    val = _batch(split, split.val, min(512, max(1, n_val)), np.random.default_rng(1), None) \
        if n_val else None

    model = SyncScorer(dropout=config.dropout)
    if config.init_from:
        state = torch.load(config.init_from, map_location="cpu", weights_only=False)
        model.load_state_dict(state.get("state_dict", state))
        log(f"fine-tuning {config.init_from}")
    log(f"model: {parameter_count(model):,} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    started = time.monotonic()
    budget = config.minutes * 60
    history, best = [], (math.inf, None)
    if val is not None:  # the untrained baseline, so the history shows what training gained
        history.append(_validate(model, val, loss_fn, 0, 0.0))
    step = 0
    while step < config.max_steps and time.monotonic() - started < budget:
        progress = min(1.0, (time.monotonic() - started) / budget)
        for group in opt.param_groups:  # warm-up, then cosine decay over the time budget
            group["lr"] = config.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(
                math.pi * progress))
        model.train()
        mouth, mel, labels = _batch(split, split.train, config.batch, rng, config.augment)
        logits = model(mouth, mel)
        loss = loss_fn(logits, labels)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % config.log_every == 0:
            log(f"step {step}  {time.monotonic() - started:6.0f} s  loss {loss.item():.3f}  "
                f"train +-1 step {_within_one(logits, labels):.2f}")
        if val is not None and (step % config.val_every == 0):
            row = _validate(model, val, loss_fn, step, time.monotonic() - started)
            history.append(row)
            log(f"  held out: loss {row['loss']:.3f}  exact {row['exact']:.3f}  "
                f"+-1 step {row['within_one']:.3f}")
            # keep the best ranking on held-out passes (loss also rises when the net
            # grows confident, which calibration fixes later)
            if -row["within_one"] < best[0]:
                best = (-row["within_one"], {k: v.clone() for k, v in model.state_dict().items()})
    if val is not None:
        row = _validate(model, val, loss_fn, step, time.monotonic() - started)
        history.append(row)
        if -row["within_one"] < best[0]:
            best = (-row["within_one"], model.state_dict())
        model.load_state_dict(best[1])
    summary = {"steps": step, "seconds": round(time.monotonic() - started),
               "clips": [c.name for c in clips], "train_starts": n_train,
               "val_starts": n_val, "history": history,
               "best_within_one": -best[0] if val is not None else None,
               "config": {k: v for k, v in asdict(config).items() if k != "cache_dir"},
               "spec": asdict(SPEC), "parameters": parameter_count(model)}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "summary": summary}, out)
    log(f"wrote {out}")
    return summary


def _validate(model, val, loss_fn, step: int, seconds: float) -> dict:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(m, a) for m, a in zip(val[0].split(64), val[1].split(64),
                                                          strict=True)])
    return {"step": step, "seconds": round(seconds), "loss": float(loss_fn(logits, val[2])),
            "exact": float((logits.argmax(1) == val[2]).float().mean()),
            "within_one": _within_one(logits, val[2])}


if __name__ == "__main__":  # python -m avsync.model.train CLIP... (tools/train.py is nicer)
    train([Path(p) for p in sys.argv[1:]], Path("model.pt"), TrainConfig(minutes=1))
