"""The sync network (torch): visual CNN, audio RNN, cross-modal attention, a score per
candidate offset.

    mouth (B, T, 48, 96) ─► per-frame 2D CNN on [crop, frame difference] ─► temporal
                            Conv1d ─► v (B, T, D)
    log-mel (B, 4L, 40) ──► Conv1d, stride 4 (one step per 40 ms) ─► bi-GRU ─► a (B, L, D)
    for every shift s:  video step t attends to the audio steps around its partner
                        under s (t - offset, +-band, with a learned position per slot)
                        ─► [v, context, v*context] ─► MLP ─► bi-GRU over t ─► mean ─► score

All shifts of a pass are scored in one batched call; training treats them as classes
(cross-entropy over shifts: every other shift of the same window is a negative, the
ones next to the truth are the hard negatives). Shapes: avsync.model.spec.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avsync.model.inputs import band_index
from avsync.model.spec import SPEC, ModelSpec


def _conv2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VisualEncoder(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cnn = nn.Sequential(_conv2d(2, 16), _conv2d(16, 32), _conv2d(32, 64),
                                 _conv2d(64, 96))
        self.temporal = nn.Sequential(
            nn.Conv1d(96, dim, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(dim, dim, 3, padding=1))

    def forward(self, mouth: torch.Tensor) -> torch.Tensor:
        b, t, h, w = mouth.shape
        # motion is what carries the speech: give the CNN the change since the last frame
        diff = torch.cat([torch.zeros_like(mouth[:, :1]), mouth[:, 1:] - mouth[:, :-1]], 1)
        x = torch.stack([mouth, diff], 2).reshape(b * t, 2, h, w)
        x = self.cnn(x).mean(dim=(2, 3)).reshape(b, t, -1).transpose(1, 2)
        return self.temporal(x).transpose(1, 2)


class AudioEncoder(nn.Module):
    def __init__(self, n_mels: int, per_step: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, 96, 5, padding=2, bias=False), nn.BatchNorm1d(96),
            nn.ReLU(inplace=True),
            nn.Conv1d(96, dim, per_step, stride=per_step, bias=False), nn.BatchNorm1d(dim),
            nn.ReLU(inplace=True))
        self.rnn = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.transpose(1, 2)).transpose(1, 2)
        return self.rnn(x)[0]


class SyncScorer(nn.Module):
    """(mouth (B, T, H, W), mel (B, 4L, M)) -> scores (B, shifts); higher = more in sync."""

    def __init__(self, spec: ModelSpec = SPEC, dim: int = 128, hidden: int = 64,
                 dropout: float = 0.25) -> None:
        super().__init__()
        self.spec = spec
        # a few minutes of training speech: dropout keeps the net from memorising voices
        self.drop = nn.Dropout(dropout)
        self.video = VisualEncoder(dim)
        self.audio = AudioEncoder(spec.n_mels, spec.mels_per_step, dim)
        width = 2 * spec.band + 1
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.slot = nn.Parameter(torch.zeros(width, dim))  # where in the band a step sits
        self.fuse = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(inplace=True))
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 1)
        self.scale = 1.0 / math.sqrt(dim)
        self.register_buffer("index", torch.as_tensor(band_index(spec).reshape(-1)),
                             persistent=False)

    def forward(self, mouth: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        b, t = mouth.shape[0], spec.frames
        s, width = spec.shifts, 2 * spec.band + 1
        v = self.drop(self.video(mouth))  # (B, T, D)
        a = self.drop(self.audio(mel))  # (B, L, D)
        d = v.shape[-1]
        n = a.shape[1] - width + 1
        keys = torch.stack([self.key(a)[:, j : j + n] for j in range(width)], 2) + self.slot
        values = torch.stack([self.value(a)[:, j : j + n] for j in range(width)], 2) + self.slot
        keys = keys[:, self.index].reshape(b, s, t, width, d)
        values = values[:, self.index].reshape(b, s, t, width, d)
        q = self.query(v).reshape(b, 1, t, 1, d)
        weights = torch.softmax((q * keys).sum(-1) * self.scale, dim=-1)  # (B, S, T, W)
        context = (weights.unsqueeze(-1) * values).sum(3)  # (B, S, T, D)
        vv = v.unsqueeze(1).expand(b, s, t, d)
        fused = self.fuse(torch.cat([vv, context, vv * context], -1)).reshape(b * s, t, -1)
        pooled = self.drop(self.rnn(self.drop(fused))[0].mean(1))
        return self.head(pooled).reshape(b, s)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
