"""The sync network (torch): mouth CNN and/or lip-contour MLP + RNN, audio CNN,
cross-modal attention, a score for every (video step, candidate offset) pair.

    mouth (B, T, 48, 96) ─► per-frame 2D CNN on [crop, frame difference] ─┐ (front
    lips (B, T, 240) ────► per-frame MLP on the lip contour and its motion ┴ "crop",
                           "lips" or "fused": one or both) ─► bi-GRU ─► v (B, T, D)
    log-mel (B, 4L, 40) ──► Conv1d stack, one step per 40 ms ─► a (B, L, D)
    for every shift s:  video step t attends to the audio steps around its partner
                        t - s (+-band, a learned position per slot) ─► context
                        ─► MLP([v, context, v * context]) ─► score (B, S, T)

The audio encoder is convolutional on purpose: one audio feature reads only
`audio_context` steps either side, so a pair's score depends on real audio alone
whenever that much exists. Training can then use clips shorter than the shift range
(news clips of ~1.2 s) with the pairs that reach past the clip masked out, and
nothing about where a clip's sound starts or stops can hint at the offset. Scores
are per pair, so a window of any length is scored by averaging its steps' scores
over shifts, each step's centred on its mean (avsync.model.infer).

The crop CNN can also be trained to predict the lip contour from the pixels
(`aux_lips`, a training-only head): it must then encode the mouth's shape, which is
the same for every face, rather than whatever tells this face from the others.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from avsync.features.lips import N_LIP
from avsync.model.inputs import LIP_FEATURES, pair_index
from avsync.model.spec import SPEC, ModelSpec

FRONTS = ("crop", "lips", "fused")  # what the video side reads


def _conv2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv1d(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, stride=stride, padding=0 if stride > 1 else kernel // 2,
                  bias=False),
        nn.BatchNorm1d(cout), nn.ReLU(inplace=True))


class MouthEncoder(nn.Module):
    """Per-frame mouth features -> (B, T, D) over the pass: the crop CNN on (B, T, H, W)
    normalised crops, the lip MLP on (B, T, LIP_FEATURES) contours, or both side by side,
    then a bidirectional GRU."""

    def __init__(self, dim: int, spec: ModelSpec, front: str = "crop") -> None:
        super().__init__()
        if front not in FRONTS:
            raise ValueError(f"front {front!r}: one of {', '.join(FRONTS)}")
        self.front = front
        width = 0
        if front in ("crop", "fused"):
            self.cnn = nn.Sequential(_conv2d(2, 16), _conv2d(16, 32), _conv2d(32, 64),
                                     _conv2d(64, 128))
            cells = math.ceil(spec.mouth_h / 16) * math.ceil(spec.mouth_w / 16)
            # flattened, not pooled: where the lips are in the crop (open, closed) matters
            self.project = nn.Sequential(nn.Linear(128 * cells, dim), nn.ReLU(inplace=True))
            width += dim
        if front in ("lips", "fused"):
            self.lips = nn.Sequential(nn.Linear(LIP_FEATURES, dim), nn.ReLU(inplace=True),
                                      nn.Linear(dim, dim), nn.ReLU(inplace=True))
            width += dim
        self.rnn = nn.GRU(width, dim // 2, batch_first=True, bidirectional=True)

    def crop_features(self, mouth: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B, T, D) per frame, before the RNN."""
        b, t, h, w = mouth.shape
        # motion is what carries the speech: give the CNN the change since the last frame
        diff = torch.cat([torch.zeros_like(mouth[:, :1]), mouth[:, 1:] - mouth[:, :-1]], 1)
        x = torch.stack([mouth, diff], 2).reshape(b * t, 2, h, w)
        return self.project(self.cnn(x).flatten(1)).reshape(b, t, -1)

    def forward(self, mouth: torch.Tensor | None, lips: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(v (B, T, D), the crop's per-frame features or None)."""
        parts, crop = [], None
        if self.front != "lips":
            crop = self.crop_features(mouth)
            parts.append(crop)
        if self.front != "crop":
            parts.append(self.lips(lips))
        return self.rnn(torch.cat(parts, -1))[0], crop


class AudioEncoder(nn.Module):
    """(B, 4L, n_mels) normalised log-mel -> (B, L, D); reach: +-spec.audio_context steps."""

    def __init__(self, dim: int, spec: ModelSpec) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv1d(spec.n_mels, 128, 5),  # +-20 ms
            _conv1d(128, dim, spec.mels_per_step, stride=spec.mels_per_step),  # one per step
            _conv1d(dim, dim, 3),  # +-1 step
            nn.Conv1d(dim, dim, 3, padding=1))  # +-1 step

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel.transpose(1, 2)).transpose(1, 2)


class PairHead(nn.Module):
    """Cross-modal attention: video steps v (B, T, D) against audio steps a (B, L, D),
    L = T + 2 max_shift + 2 margin -> a score per (shift, step) (B, S, T)."""

    def __init__(self, spec: ModelSpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.spec = spec
        width = 2 * spec.band + 1
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        # where in the band an audio step sits: lets the net learn how far the sound
        # trails the mouth that shapes it
        self.slot = nn.Parameter(torch.zeros(width, dim))
        self.fuse = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 1))
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        b, t = v.shape[:2]
        s, width = spec.shifts, 2 * spec.band + 1
        q, k = self.query(v), self.key(a)
        # attention logits of every video step to every audio step, then each (shift,
        # step) pair's band of them: pos[t, i, j] = partner - band + j
        pos = torch.as_tensor(pair_index(spec, t).T[:, :, None] - spec.band
                              + np.arange(width)).reshape(1, t, s * width)
        logits = torch.gather(q @ k.transpose(1, 2), 2, pos.expand(b, -1, -1))
        logits = logits.reshape(b, t, s, width) + (q @ self.slot.T).unsqueeze(2)
        weights = torch.softmax(logits * self.scale, dim=-1)
        # context = the band's values, weighted: as a sparse (step, shift) x audio matrix
        spread = torch.zeros(b, t, s, a.shape[1], dtype=v.dtype)
        spread = spread.scatter(3, pos.reshape(1, t, s, width).expand(b, -1, -1, -1), weights)
        context = (spread.reshape(b, t * s, -1) @ self.value(a)).reshape(b, t, s, -1)
        vv = v.unsqueeze(2).expand_as(context)
        scores = self.fuse(torch.cat([vv, context, vv * context], -1)).squeeze(-1)
        return scores.transpose(1, 2)  # (B, S, T)


class SyncScorer(nn.Module):
    """(mouth (B, T, H, W), mel (B, 4L, M), lips (B, T, LIP_FEATURES)) -> scores (B,
    shifts, T); higher = that video step and that shift's audio belong together. L = T
    + 2 max_shift + 2 margin audio steps (avsync.model.inputs.audio_input). The video
    inputs the front does not read may be None."""

    def __init__(self, spec: ModelSpec = SPEC, dim: int = 128, hidden: int = 64,
                 dropout: float = 0.1, front: str = "crop", aux_lips: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.front = front
        self.drop = nn.Dropout(dropout)
        self.video = MouthEncoder(dim, spec, front)
        self.audio = AudioEncoder(dim, spec)
        self.head = PairHead(spec, dim, hidden)
        # training only: the lip contour (positions, N_LIP x 3) predicted from the crop
        self.lip_head = nn.Linear(dim, N_LIP * 3) if aux_lips and front != "lips" else None

    @property
    def slot(self) -> nn.Parameter:
        return self.head.slot

    def forward(self, mouth: torch.Tensor | None, mel: torch.Tensor,
                lips: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores_and_lips(mouth, mel, lips)[0]

    def scores_and_lips(self, mouth: torch.Tensor | None, mel: torch.Tensor,
                        lips: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The scores, and the lip contour predicted from the crops (aux_lips) or None."""
        v, crop = self.video(mouth, lips)
        a = self.drop(self.audio(mel))  # (B, L, D)
        scores = self.head(self.drop(v), a)
        predicted = None if self.lip_head is None else self.lip_head(crop)
        return scores, predicted


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
