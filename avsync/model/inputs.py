"""Model inputs from ring data: the one preprocessing path of training and inference.

A scoring pass covers SPEC.frames grid steps of video from `t_start`, and the audio
those steps need for every candidate offset in a block centred on `centre` steps:
offsets (centre - max_shift .. centre + max_shift) * step_s. With offset d (> 0: the
audio leads), picture time t is paired with the sound captured at t - d.
"""

from __future__ import annotations

import numpy as np

from avsync.features import audio as af
from avsync.model.spec import SPEC, ModelSpec

MEL_FLOOR_DB = 80.0  # below the loudest bin of a pass: silence and padding look alike


def grid_times(t_start: float, spec: ModelSpec = SPEC) -> np.ndarray:
    return t_start + np.arange(spec.frames) * spec.step_s


def pick_frames(video_times: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the decoded frame nearest each grid time, and whether it is near enough
    (within 3/4 of the larger of the grid step and the frame interval)."""
    if len(video_times) == 0:
        return np.zeros(len(grid), int), np.zeros(len(grid), bool)
    right = np.clip(np.searchsorted(video_times, grid), 1, max(1, len(video_times) - 1))
    left = right - 1
    nearest = np.where(np.abs(video_times[left] - grid) <= np.abs(video_times[right] - grid),
                       left, right) if len(video_times) > 1 else np.zeros(len(grid), int)
    interval = float(np.median(np.diff(video_times))) if len(video_times) > 1 else 0.04
    reach = 0.75 * max(interval, grid[1] - grid[0] if len(grid) > 1 else 0.04)
    return nearest, np.abs(video_times[nearest] - grid) <= reach


def mouth_input(crops: np.ndarray) -> np.ndarray:
    """(frames, H, W) uint8 -> float32, normalised per pass (lighting, contrast)."""
    x = crops.astype(np.float32)
    return (x - x.mean()) / (x.std() + 1.0)


def audio_input(samples: np.ndarray, audio_t0: float, t_start: float, centre: int = 0,
                spec: ModelSpec = SPEC, rate: int = af.RATE) -> np.ndarray:
    """(spec.audio_frames, n_mels) float32 log-mel for a pass whose video starts at t_start.

    Audio grid step i starts at t_start - (max_shift + band + centre) * step_s; samples
    outside what the window holds count as silence.
    """
    if rate != af.RATE:
        raise ValueError(f"audio must be {af.RATE} Hz mono, got {rate} Hz")
    hop_s = spec.step_s / spec.mels_per_step
    if abs(hop_s * rate - af.HOP) > 1e-6:
        raise ValueError("the model's mel hop must equal the audio feature hop")
    first = t_start - (spec.max_shift + spec.band + centre) * spec.step_s
    n = spec.audio_frames
    # mel frame k is centred at first + (k + 0.5) * hop_s
    start = int(round((first + 0.5 * hop_s - audio_t0) * rate - af.WIN / 2))
    length = (n - 1) * af.HOP + af.WIN
    chunk = np.zeros(length, np.float32)
    lo, hi = max(start, 0), min(start + length, len(samples))
    if hi > lo:
        chunk[lo - start : hi - start] = samples[lo:hi]
    mel = af.log_mel(af.power_frames(chunk))[:n]
    mel = np.maximum(mel, mel.max() - MEL_FLOOR_DB)
    mel = mel - mel.mean(axis=0, keepdims=True)  # per band: channel colour, gain
    return (mel / (mel.std() + 1e-3)).astype(np.float32)


def audio_span(t_start: float, offsets_s: np.ndarray,
               spec: ModelSpec = SPEC) -> tuple[np.ndarray, np.ndarray]:
    """Media time span of the audio a pass from t_start pairs with, per offset: the
    video span moved back by the offset, widened by the attention band."""
    lo = t_start - offsets_s - spec.band * spec.step_s
    return lo, lo + (spec.frames + 2 * spec.band) * spec.step_s


def band_index(spec: ModelSpec = SPEC) -> np.ndarray:
    """(shifts, frames) first audio step of the band that video step t attends to under
    shift s (offset (s - max_shift) steps): t + 2*max_shift - s."""
    s = np.arange(spec.shifts)[:, None]
    t = np.arange(spec.frames)[None, :]
    return t + 2 * spec.max_shift - s
