"""The pretrained active-speaker encoders of ../shared/weights/asd (Light-ASD, MIT), as a
frozen front end for the sync model's ablation (avsync/model/weights/CARD.md).

Re-implemented from the shapes in the state dict and the published architecture:
factorised 3D convolutions (spatial k x k, then temporal k), two kernel sizes summed,
then a 1x1x1 mix; batch norm with eps 1e-3. Visual: 112x112 grey face crops at 25 fps,
(x / 255 - 0.4161) / 0.1688 -> one 128-d vector per frame. Audio: 13 MFCC at 100 Hz
-> one 128-d vector per video frame (four MFCC frames).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights" / "asd" / \
    "light-asd_pretrain_AVA_CVPR.model"
MEAN, STD = 0.4161, 0.1688


def _bn3(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, momentum=0.01, eps=0.001)


def _bn2(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=0.01, eps=0.001)


class VisualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        stride = (1, 2, 2) if down else (1, 1, 1)
        for k in (3, 5):
            setattr(self, f"s_{k}", nn.Conv3d(cin, cout, (1, k, k), stride, (0, k // 2, k // 2),
                                              bias=False))
            setattr(self, f"bn_s_{k}", _bn3(cout))
            setattr(self, f"t_{k}", nn.Conv3d(cout, cout, (k, 1, 1), 1, (k // 2, 0, 0),
                                              bias=False))
            setattr(self, f"bn_t_{k}", _bn3(cout))
        self.last = nn.Conv3d(cout, cout, 1, bias=False)
        self.bn_last = _bn3(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for k in (3, 5):
            y = torch.relu(getattr(self, f"bn_s_{k}")(getattr(self, f"s_{k}")(x)))
            out = out + torch.relu(getattr(self, f"bn_t_{k}")(getattr(self, f"t_{k}")(y)))
        return torch.relu(self.bn_last(self.last(out)))


class AudioBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        for k in (3, 5):
            setattr(self, f"m_{k}", nn.Conv2d(cin, cout, (k, 1), 1, (k // 2, 0), bias=False))
            setattr(self, f"bn_m_{k}", _bn2(cout))
            setattr(self, f"t_{k}", nn.Conv2d(cout, cout, (1, k), 1, (0, k // 2), bias=False))
            setattr(self, f"bn_t_{k}", _bn2(cout))
        self.last = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_last = _bn2(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for k in (3, 5):
            y = torch.relu(getattr(self, f"bn_m_{k}")(getattr(self, f"m_{k}")(x)))
            out = out + torch.relu(getattr(self, f"bn_t_{k}")(getattr(self, f"t_{k}")(y)))
        return torch.relu(self.bn_last(self.last(out)))


class VisualEncoder(nn.Module):
    """(B, T, 112, 112) grey 0..255 -> (B, T, 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = VisualBlock(1, 32, down=True)
        self.block2 = VisualBlock(32, 64, down=False)
        self.block3 = VisualBlock(64, 128, down=False)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:  # 3x3 stride 2 spatial max, per frame
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)
        y = nn.functional.max_pool2d(y, 3, 2, 1)
        return y.reshape(b, t, c, *y.shape[-2:]).transpose(1, 2)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = ((faces / 255.0 - MEAN) / STD).unsqueeze(1)
        x = self._pool(self.block1(x))
        x = self._pool(self.block2(x))
        x = self.block3(x)  # (B, 128, T, h, w)
        return x.amax(dim=(3, 4)).transpose(1, 2)


class AudioEncoder(nn.Module):
    """(B, 4T, 13) MFCC -> (B, T, 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = AudioBlock(1, 32)
        self.block2 = AudioBlock(32, 64)
        self.block3 = AudioBlock(64, 128)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        x = mfcc.unsqueeze(1).transpose(2, 3)  # (B, 1, 13, 4T)
        x = nn.functional.max_pool2d(self.block1(x), (1, 3), (1, 2), (0, 1))
        x = nn.functional.max_pool2d(self.block2(x), (1, 3), (1, 2), (0, 1))
        x = self.block3(x)
        return x.mean(dim=2).transpose(1, 2)


def load(which: str) -> nn.Module:
    """'visual' or 'audio' encoder with the pretrained weights, in eval mode."""
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    prefix = {"visual": "model.visualEncoder.", "audio": "model.audioEncoder."}[which]
    model = VisualEncoder() if which == "visual" else AudioEncoder()
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                           if k.startswith(prefix)})
    return model.eval()
