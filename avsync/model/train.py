"""Self-supervised training of the sync scorer from folders of in-sync clips.

A training pass is `pass_steps` grid steps of one clip where the face is tracked and
someone speaks. The net scores every video step against the audio under every shift
of the range; the truth is shift 0 (the clip's own alignment) and every other shift
of the same step is a negative, the ones next to the truth the hard negatives. Pairs
whose audio reaches past the clip are masked out of the softmax, so ~1.2 s news clips
train as well as long ones and clip edges teach nothing. The network is equivariant
in the shift (the same weights score every shift), so it cannot learn a favourite one.

Every source (a folder: a corpus, a channel) is drawn equally often whatever its
size, unless `source_weights` says otherwise: where "in sync" lies is what the clips
teach, and no single source may set it. Some clips of each source (`val_share`,
picked by a hash of the name) are held out for the progress figures; speaker-disjoint
figures come from tools/evaluate.py on other speakers.

A run writes a checkpoint every `checkpoint_every` steps (model, optimiser, random
generators, history): `resume=True` carries on from it, so a long CPU run can span
sessions and still give the model an uninterrupted run gives.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avsync.features import lips as lp
from avsync.model import data
from avsync.model.augment import (
    Augment,
    augment_lips,
    augment_mel,
    augment_mouth,
    draw_flips,
    normalise_lips,
    normalise_mel,
    normalise_mouth,
)
from avsync.model.inputs import LIP_POSITION_SCALE
from avsync.model.net import SyncScorer, parameter_count
from avsync.model.spec import SPEC, ModelSpec

MIN_SPEECH_SHARE = 0.4  # of a pass's 10 ms frames above the speech level


@dataclass
class TrainConfig:
    # the budget: steps, and a wall-clock cap in minutes. The learning-rate schedule runs
    # over the steps unless the cap is the nearer end: a run that finishes its steps
    # inside the cap gives the same model on any machine, only later
    max_steps: int = 3000
    minutes: float = 90.0
    batch: int = 32
    pass_steps: int = 15  # video steps per training pass (0.6 s)
    lr: float = 2e-3
    weight_decay: float = 0.05
    dropout: float = 0.1
    seed: int = 0
    val_share: float = 0.1
    threads: int = 2
    log_every: int = 50
    val_every: int = 250
    cache_dir: str = field(default_factory=lambda: str(data.default_cache_dir()))
    init_from: str | None = None  # a checkpoint to fine-tune (e.g. the shipped sync.pt)
    front: str = "crop"  # what the video side reads: crop, lips or fused (avsync.model.net)
    # > 0: the crop CNN also predicts the lip contour, this loss weight beside the sync
    # loss (the generalisation variant of the model card)
    aux_weight: float = 0.0
    # > 0: the whole pass's cross-entropy (pass_loss) beside the per-step one
    pass_weight: float = 0.0
    source_weights: dict[str, float] = field(default_factory=dict)  # absent: 1
    checkpoint_every: int = 100
    # stop at this step with the checkpoint written, to carry on later (resume=True): a
    # long run split over sessions on purpose
    pause_at_step: int | None = None
    augment: Augment = field(default_factory=Augment)


@dataclass
class Source:
    name: str
    clips: list[data.GridClip]
    starts: list[np.ndarray]  # per clip: usable pass starts (grid steps)

    @property
    def passes(self) -> int:
        return sum(len(s) for s in self.starts)


def usable_starts(clip: data.GridClip, steps: int) -> np.ndarray:
    """Pass starts with the face at every step and speech in most of the span."""
    n = clip.steps - steps + 1
    if n <= 0:
        return np.zeros(0, int)
    face = np.convolve(clip.video_ok.astype(float), np.ones(steps), "valid") >= steps - 1e-6
    speech = np.convolve(clip.speech[clip.pad : clip.pad + clip.steps], np.ones(steps),
                         "valid") / steps
    return np.flatnonzero(face[:n] & (speech[:n] >= MIN_SPEECH_SHARE))


def pair_mask(clip: data.GridClip, start: int, steps: int, spec: ModelSpec) -> np.ndarray:
    """(shifts, steps): pairs whose audio (partner, band and encoder reach) the clip holds."""
    width = 2 * spec.margin + 1
    whole = np.convolve(clip.audio_ok.astype(float), np.ones(width), "same") >= width - 1e-6
    shifts = np.arange(-spec.max_shift, spec.max_shift + 1)[:, None]
    partner = start + np.arange(steps)[None, :] - shifts + clip.pad
    return whole[partner]


def make_batch(sources: list[Source], n: int, steps: int, rng: np.random.Generator,
               spec: ModelSpec = SPEC, weights: np.ndarray | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """n passes: raw grey crops (n, steps, H, W), raw log-mel dB (n, 4L, M), pair masks
    (n, shifts, steps), raw lip contours (n, steps, N_LIP, 3). Sources are drawn by
    `weights` (default: equally)."""
    p = np.full(len(sources), 1 / len(sources)) if weights is None else weights
    mouths, mels, masks, lips = [], [], [], []
    reach = spec.max_shift + spec.margin
    per = spec.mels_per_step
    for s in rng.choice(len(sources), size=n, p=p):
        source = sources[s]
        sizes = np.array([len(x) for x in source.starts], float)
        c = rng.choice(len(source.clips), p=sizes / sizes.sum())
        clip = source.clips[c]
        start = int(rng.choice(source.starts[c]))
        mouths.append(clip.mouth[start : start + steps])
        a0 = (start - reach + clip.pad) * per
        mels.append(clip.mel[a0 : a0 + (steps + 2 * reach) * per])
        masks.append(pair_mask(clip, start, steps, spec))
        lips.append(clip.lips[start : start + steps] if clip.lips is not None
                    else np.zeros((steps, lp.N_LIP, 3), np.float32))
    return (torch.from_numpy(np.stack(mouths)).float(), torch.from_numpy(np.stack(mels)),
            torch.from_numpy(np.stack(masks)), torch.from_numpy(np.stack(lips)))


def model_inputs(model: SyncScorer, mouth: torch.Tensor, lips: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The normalised video inputs the model's front reads (None for the other)."""
    return (normalise_mouth(mouth) if model.front != "lips" else None,
            normalise_lips(lips) if model.front != "crop" else None)


def lip_target(lips: torch.Tensor) -> torch.Tensor:
    """(B, T, N_LIP, 3) -> (B, T, N_LIP * 3): what the auxiliary head predicts, the
    positions part of normalise_lips."""
    b, t = lips.shape[:2]
    return ((lips - lips.mean(dim=1, keepdim=True)) / LIP_POSITION_SCALE).reshape(b, t, -1)


def step_loss(scores: torch.Tensor, mask: torch.Tensor, spec: ModelSpec = SPEC
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over the valid shifts of every video step (truth: shift 0), and
    per step whether the best shift is within one of the truth."""
    k = spec.max_shift
    usable = mask[:, k, :] & (mask.sum(1) >= 3)  # the truth is scoreable, and rivals too
    logits = scores.masked_fill(~mask, -1e4).transpose(1, 2)[usable]  # (N, shifts)
    if logits.shape[0] == 0:  # nothing to learn from: a zero loss, not NaN weights
        return scores.sum() * 0.0, torch.zeros(0)
    target = torch.full((logits.shape[0],), k, dtype=torch.long)
    loss = F.cross_entropy(logits, target)
    near = ((logits.argmax(1) - k).abs() <= 1).float()
    return loss, near


def pass_loss(scores: torch.Tensor, mask: torch.Tensor, spec: ModelSpec = SPEC
              ) -> torch.Tensor:
    """Cross-entropy of the whole pass: its steps' mean score per shift (the shifts
    scoreable at every step), truth shift 0. A window is judged by the sum of its steps,
    so training the sum to find the offset trains what inference reads."""
    whole = mask.all(dim=2)  # (B, S)
    ok = whole[:, spec.max_shift] & (whole.sum(1) >= 3)
    if not ok.any():
        return scores.sum() * 0.0
    logits = scores.mean(2).masked_fill(~whole, -1e4)[ok]
    target = torch.full((logits.shape[0],), spec.max_shift, dtype=torch.long)
    return F.cross_entropy(logits, target)


def pass_accuracy(scores: torch.Tensor, mask: torch.Tensor, spec: ModelSpec = SPEC) -> float:
    """Per pass: the shift with the best mean log-probability over its steps (shifts
    scoreable at every step only) within one of the truth: the check's view. NaN when
    no pass qualifies."""
    logp = torch.log_softmax(scores.masked_fill(~mask, -1e4), dim=1)
    whole = mask.all(dim=2)  # (B, S)
    total = logp.sum(2).masked_fill(~whole, -math.inf)
    ok = whole[:, spec.max_shift] & (whole.sum(1) >= 3)
    if not ok.any():
        return math.nan
    best = total.argmax(1)
    return float(((best - spec.max_shift).abs() <= 1)[ok].float().mean())


def load_sources(folders: dict[str, list[Path]], config: TrainConfig, log=print,
                 spec: ModelSpec = SPEC, own_offsets: dict[str, float] | None = None,
                 ) -> tuple[list[Source], list[Source]]:
    """(training, held-out) sources; held out: the clips data.held_out() picks (by a
    hash of the name, so the choice does not depend on order or on the other clips).
    own_offsets (clip file name -> seconds) re-aligns clips of doubtful sync."""
    train, held = [], []
    own_offsets = own_offsets or {}
    for name, paths in folders.items():
        clips = []
        for i, path in enumerate(paths, 1):
            if i % 250 == 0 or i == len(paths):
                log(f"features {name}: {i}/{len(paths)}")
            try:
                clips.append(data.to_grid(data.cached(path, config.cache_dir,
                                                      landmark_every=spec.landmark_every),
                                          name, spec,
                                          own_offset_s=own_offsets.get(path.name, 0.0)))
            except Exception as err:  # one unreadable clip must not end the run
                log(f"  skipped {path.name}: {err}")
        kept = [c for c in clips if not data.held_out(c.name, config.val_share)]
        aside = [c for c in clips if data.held_out(c.name, config.val_share)]
        if not kept:  # a source too small to split: train on all of it
            kept, aside = clips, []
        for part, out in ((kept, train), (aside, held)):
            starts = [usable_starts(c, config.pass_steps) for c in part]
            keep = [i for i, s in enumerate(starts) if len(s)]
            if keep:
                out.append(Source(name, [part[i] for i in keep], [starts[i] for i in keep]))
    return train, held


def train(folders: dict[str, list[Path]], out: Path, config: TrainConfig, log=print,
          spec: ModelSpec = SPEC, own_offsets: dict[str, float] | None = None,
          resume: bool = False) -> dict:
    """Train, writing the best model (by the held-out figures) to `out` and a checkpoint
    beside it (`out` + .ckpt) as it goes; resume=True carries on from that checkpoint."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    sources, held = load_sources(folders, config, log, spec, own_offsets)
    if not sources:
        raise ValueError("no usable training passes (face and speech): check the clips")
    weights = np.array([config.source_weights.get(s.name, 1.0) for s in sources])
    weights = weights / weights.sum()
    for s, w in zip(sources, weights, strict=True):
        log(f"source {s.name}: {len(s.clips)} clips, {s.passes} pass starts, "
            f"drawn {100 * w:.1f}%")
    val = {s.name: make_batch([s], 512, config.pass_steps, np.random.default_rng(1), spec)
           for s in held} or None

    model = SyncScorer(spec, dropout=config.dropout, front=config.front,
                       aux_lips=config.aux_weight > 0)
    if config.init_from:
        state = torch.load(config.init_from, map_location="cpu", weights_only=False)
        # the training-only lip head may be new; every other weight must fit
        missing, unexpected = model.load_state_dict(state.get("state_dict", state),
                                                    strict=False)
        wrong = [k for k in missing + unexpected if not k.startswith("lip_head.")]
        if wrong:
            raise ValueError(f"{config.init_from} is not a {config.front} model "
                             f"({', '.join(wrong[:3])} ...)")
        log(f"fine-tuning {config.init_from}")
    log(f"model: {parameter_count(model):,} parameters, front {config.front}"
        + (f", lip-contour head (weight {config.aux_weight})" if config.aux_weight else ""))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    checkpoint = out.with_name(out.name + ".ckpt")
    history: list[dict] = []
    best: tuple[float, dict | None] = (-math.inf, None)
    step, elapsed = 0, 0.0
    if resume and not checkpoint.exists():
        log(f"no checkpoint {checkpoint} to resume from: starting at step 0")
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError:  # another front or size: not this run's checkpoint
            raise ValueError(f"{checkpoint} is not a checkpoint of this run (front "
                             f"{config.front}); remove it or give another --out") from None
        opt.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["numpy_rng"]
        g.set_state(state["torch_generator"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        best = (state["best_score"], state["best_model"])
        log(f"resumed from {checkpoint} at step {step}")
    elif val is not None:  # the untrained baseline, so the history shows what training gained
        history.append(_validate(model, val, 0, 0.0, spec))
    started = time.monotonic() - elapsed
    budget = config.minutes * 60
    stop = min(config.max_steps, config.pause_at_step or config.max_steps)
    while step < stop and time.monotonic() - started < budget:
        # the schedule follows whichever budget ends first
        progress = min(1.0, max((time.monotonic() - started) / budget,
                                step / config.max_steps))
        for group in opt.param_groups:  # warm-up, then cosine decay over the budget
            group["lr"] = config.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(
                math.pi * progress))
        model.train()
        mouth, mel, mask, lips = make_batch(sources, config.batch, config.pass_steps, rng,
                                            spec, weights)
        flips = draw_flips(len(mouth), g, config.augment)
        mouth = augment_mouth(mouth, g, config.augment, flips)
        lips = augment_lips(lips, g, config.augment, flips)
        mel = normalise_mel(augment_mel(mel, g, config.augment))
        scores, predicted = model.scores_and_lips(*_order(model_inputs(model, mouth, lips), mel))
        loss, near = step_loss(scores, mask, spec)
        total = loss
        if config.pass_weight:
            total = total + config.pass_weight * pass_loss(scores, mask, spec)
        if predicted is not None:
            total = total + config.aux_weight * F.smooth_l1_loss(predicted, lip_target(lips))
        opt.zero_grad()
        total.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % config.log_every == 0:
            log(f"step {step}  {time.monotonic() - started:6.0f} s  loss {loss.item():.3f}  "
                f"step +-1 {near.mean().item():.2f}"
                + (f"  total {total.item():.3f}" if total is not loss else ""))
        if val is not None and step % config.val_every == 0:
            row = _validate(model, val, step, time.monotonic() - started, spec)
            history.append(row)
            log("  held out: " + "  ".join(
                f"{name} loss {r['loss']:.3f} step +-1 {r['step_within_one']:.3f} "
                f"pass +-1 {r['pass_within_one']:.3f}" for name, r in row["sources"].items()))
            if row["pass_within_one"] > best[0]:
                best = (row["pass_within_one"],
                        {k: v.clone() for k, v in model.state_dict().items()})
        if step % config.checkpoint_every == 0 or step == stop:
            _save_checkpoint(checkpoint, model, opt, rng, g, step,
                             time.monotonic() - started, history, best)
    if step < config.max_steps and step == config.pause_at_step:
        log(f"paused at step {step}: {checkpoint} (carry on with resume)")
        return {"steps": step, "paused": True, "checkpoint": str(checkpoint)}
    if val is not None:
        row = _validate(model, val, step, time.monotonic() - started, spec)
        history.append(row)
        if row["pass_within_one"] >= best[0] or best[1] is None:
            best = (row["pass_within_one"], model.state_dict())
        model.load_state_dict(best[1])
    summary = {"steps": step, "seconds": round(time.monotonic() - started),
               "sources": {s.name: {"clips": len(s.clips), "passes": s.passes,
                                    "weight": round(float(w), 4)}
                           for s, w in zip(sources, weights, strict=True)},
               "held_out": {s.name: len(s.clips) for s in held},
               "history": history,
               "best_pass_within_one": best[0] if val is not None else None,
               "config": {k: v for k, v in asdict(config).items() if k != "cache_dir"},
               "spec": asdict(spec), "parameters": parameter_count(model),
               "front": config.front, "own_offsets": own_offsets or {}}
    out.parent.mkdir(parents=True, exist_ok=True)
    # the training-only head is not part of the shipped model
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("lip_head.")}
    torch.save({"state_dict": state, "summary": summary}, out)
    log(f"wrote {out}")
    return summary


def _order(video: tuple[torch.Tensor | None, torch.Tensor | None], mel: torch.Tensor
           ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """(mouth, lips), mel -> the model's argument order (mouth, mel, lips)."""
    return video[0], mel, video[1]


def _save_checkpoint(path: Path, model: SyncScorer, opt: torch.optim.Optimizer,
                     rng: np.random.Generator, g: torch.Generator, step: int, elapsed: float,
                     history: list[dict], best: tuple[float, dict | None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")  # a kill while writing keeps the last one
    torch.save({"model": model.state_dict(), "optimiser": opt.state_dict(),
                "numpy_rng": rng.bit_generator.state, "torch_generator": g.get_state(),
                "torch_rng": torch.get_rng_state(), "step": step, "elapsed": elapsed,
                "history": history, "best_score": best[0], "best_model": best[1]}, tmp)
    tmp.replace(path)


def _validate(model: SyncScorer, val: dict, step: int, seconds: float,
              spec: ModelSpec) -> dict:
    """Held-out figures per source; `pass_within_one` (what picks the kept step) is
    their mean, every source weighted equally."""
    model.eval()
    rows = {}
    for name, (mouth, mel, mask, lips) in val.items():
        with torch.no_grad():
            scores = torch.cat([
                model(*_order(model_inputs(model, m, li), normalise_mel(a)))
                for m, a, li in zip(mouth.split(128), mel.split(128), lips.split(128),
                                    strict=True)])
        loss, near = step_loss(scores, mask, spec)
        rows[name] = {"loss": float(loss),
                      "step_within_one": float(near.mean()) if len(near) else math.nan,
                      "pass_within_one": pass_accuracy(scores, mask, spec)}
    return {"step": step, "seconds": round(seconds), "sources": rows,
            "pass_within_one": float(np.nanmean([r["pass_within_one"] for r in rows.values()]))}


if __name__ == "__main__":  # python -m avsync.model.train FOLDER... (tools/train.py is nicer)
    train({Path(p).name: data.media_files(p) for p in sys.argv[1:]}, Path("model.pt"),
          TrainConfig(max_steps=100))
