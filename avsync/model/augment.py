"""Training-time augmentation of whole batches (torch), mild enough to keep lips readable.

Picture: the crop box off by a few pixels, scaled and turned a little (the face
tracker's error, other framings), mirrored, seen at a lower resolution (small faces),
softened (focus, compression), gamma
(lighting) and sensor noise. Lip contour: mirrored with the picture, its movement
larger or smaller (speaking styles), turned a little (what the pose normalisation
leaves) and jittered (the face mesh's noise). Sound: noise of random colour at 0-40 dB SNR added in
the power domain of the log-mel (rooms, hum, crowds), and a spectral tilt (mics,
channels). Both sides are normalised per pass afterwards, exactly as at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avsync.features import audio as af
from avsync.features import lips as lp
from avsync.model.inputs import LIP_POSITION_SCALE, LIP_VELOCITY_SCALE, MEL_FLOOR_DB


@dataclass(frozen=True)
class Augment:
    max_shift_px: float = 0.06  # of the crop size
    scale: tuple[float, float] = (0.9, 1.12)
    max_turn_deg: float = 6.0
    flip: float = 0.5
    blur: float = 0.3
    low_res: float = 0.4  # share of passes seen at a lower resolution (small faces)
    low_res_factor: tuple[float, float] = (1.5, 3.0)
    gamma: tuple[float, float] = (0.7, 1.4)
    max_noise: float = 6.0  # grey levels
    audio_noise: float = 0.6  # share of passes with noise added
    snr_db: tuple[float, float] = (0.0, 40.0)
    tilt_db: float = 8.0  # spectral tilt across the mel bands, +-
    lip_motion: tuple[float, float] = (0.8, 1.25)  # movement scaled about the pass mean
    lip_turn_deg: float = 4.0
    lip_noise: float = 0.002  # eye-distance units, per point and frame


def draw_flips(b: int, g: torch.Generator, aug: Augment) -> torch.Tensor:
    """(B,) bool: the passes seen mirrored (the crop and the lip contour alike)."""
    return torch.rand(b, generator=g) < aug.flip


def augment_mouth(x: torch.Tensor, g: torch.Generator, aug: Augment,
                  flips: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W) float grey levels 0..255 -> the same, each pass transformed alike
    over its frames (mirrored where `flips`)."""
    b, t, h, w = x.shape
    r = lambda n: torch.rand(n, generator=g)  # noqa: E731
    angle = (r(b) * 2 - 1) * np.deg2rad(aug.max_turn_deg)
    scale = aug.scale[0] + r(b) * (aug.scale[1] - aug.scale[0])
    flip = torch.where(flips, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip * w / h, cos
    theta[:, :, 2] = (r((b, 2)) * 2 - 1) * 2 * aug.max_shift_px
    grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    for i in torch.nonzero(r(b) < aug.low_res).flatten().tolist():  # a small face, upscaled
        f = aug.low_res_factor[0] + float(r(1)) * (aug.low_res_factor[1] - aug.low_res_factor[0])
        small = F.interpolate(x[i : i + 1], size=(max(8, round(h / f)), max(8, round(w / f))),
                              mode="area")
        x[i : i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    soft = r(b) < aug.blur
    if soft.any():
        x[soft] = F.avg_pool2d(x[soft], 3, stride=1, padding=1, count_include_pad=False)
    gamma = aug.gamma[0] + r((b, 1, 1, 1)) * (aug.gamma[1] - aug.gamma[0])
    x = 255.0 * (x.clamp(0, 255) / 255.0) ** gamma
    noise = torch.randn(x.shape, generator=g) * (r((b, 1, 1, 1)) * aug.max_noise)
    return (x + noise).clamp(0, 255)


def mirror_lips(lips: torch.Tensor) -> torch.Tensor:
    """(..., N_LIP, 3) -> the mirror images (avsync.features.lips.mirror)."""
    out = lips[..., torch.as_tensor(lp.MIRROR), :]
    return out * torch.tensor([-1.0, 1.0, 1.0])


def augment_lips(lips: torch.Tensor, g: torch.Generator, aug: Augment,
                 flips: torch.Tensor) -> torch.Tensor:
    """(B, T, N_LIP, 3) lip contours -> the same, each pass changed alike over its frames
    (mirrored where `flips`)."""
    b = lips.shape[0]
    r = lambda n: torch.rand(n, generator=g)  # noqa: E731
    lips = torch.where(flips[:, None, None, None], mirror_lips(lips), lips)
    mean = lips.mean(dim=1, keepdim=True)
    motion = aug.lip_motion[0] + r((b, 1, 1, 1)) * (aug.lip_motion[1] - aug.lip_motion[0])
    lips = mean + (lips - mean) * motion
    angle = (r(b) * 2 - 1) * np.deg2rad(aug.lip_turn_deg)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    x, y = lips[..., 0], lips[..., 1]
    lips = torch.stack([cos * x - sin * y, sin * x + cos * y, lips[..., 2]], -1)
    return lips + torch.randn(lips.shape, generator=g) * aug.lip_noise


_BAND_WEIGHT = torch.as_tensor(af._FILTERS.sum(axis=1))  # white noise power per mel band
_BAND_INDEX = torch.linspace(0, 1, af.N_MELS)


def augment_mel(mel: torch.Tensor, g: torch.Generator, aug: Augment) -> torch.Tensor:
    """(B, F, n_mels) log-mel dB -> the same with noise and a tilt."""
    b = mel.shape[0]
    r = lambda n: torch.rand(n, generator=g)  # noqa: E731
    power = 10.0 ** (mel / 10.0)
    signal = power.mean(dim=(1, 2), keepdim=True)
    colour = (r((b, 1, 1)) * 2 - 1) * 3  # slope in octaves-ish: pink/brown .. blue
    shape = _BAND_WEIGHT * torch.exp(-colour * _BAND_INDEX * 2)
    shape = shape / shape.mean(dim=-1, keepdim=True)
    snr = aug.snr_db[0] + r((b, 1, 1)) * (aug.snr_db[1] - aug.snr_db[0])
    noisy = (r((b, 1, 1)) < aug.audio_noise).float()
    # a little randomness frame to frame, as real noise has
    jitter = torch.exp(torch.randn(mel.shape, generator=g) * 0.5)
    power = power + noisy * signal * 10.0 ** (-snr / 10.0) * shape * jitter
    tilt = (r((b, 1, 1)) * 2 - 1) * aug.tilt_db * (_BAND_INDEX - 0.5)
    return 10.0 * torch.log10(power + 1e-10) + tilt


def normalise_mouth(x: torch.Tensor) -> torch.Tensor:
    """Per pass, as avsync.model.inputs.mouth_input."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (std + 1.0)


def normalise_lips(lips: torch.Tensor) -> torch.Tensor:
    """Per pass, as avsync.model.inputs.lips_input: (B, T, N_LIP, 3) -> (B, T, LIP_FEATURES)."""
    b, t = lips.shape[:2]
    moved = (lips - lips.mean(dim=1, keepdim=True)) / LIP_POSITION_SCALE
    velocity = torch.diff(lips, dim=1, prepend=lips[:, :1]) / LIP_VELOCITY_SCALE
    return torch.cat([moved.reshape(b, t, -1), velocity.reshape(b, t, -1)], -1)


def normalise_mel(mel: torch.Tensor) -> torch.Tensor:
    """Per pass, as avsync.model.inputs.normalise_mel."""
    top = mel.amax(dim=(1, 2), keepdim=True)
    mel = torch.maximum(mel, top - MEL_FLOOR_DB)
    mel = mel - mel.mean(dim=1, keepdim=True)
    return mel / (mel.std(dim=(1, 2), keepdim=True, unbiased=False) + 1e-3)
