"""Model inputs from ring data: the one preprocessing path of training and inference.

A scoring pass covers SPEC.frames grid steps of video from `t_start`, and the audio
those steps need for every candidate offset in a block centred on `centre` steps:
offsets (centre - max_shift .. centre + max_shift) * step_s. With offset d (> 0: the
audio leads), picture time t is paired with the sound captured at t - d.
"""

from __future__ import annotations

import numpy as np

from avsync.features import audio as af
from avsync.features import lips
from avsync.model.spec import SPEC, ModelSpec

MEL_FLOOR_DB = 80.0  # below the loudest bin of a pass: silence and padding look alike
# typical spread of a lip point's position within a 0.6 s pass, and of its change per
# frame, in eye-distance units (medians over the training clips: 0.008, 0.0045)
LIP_POSITION_SCALE = 0.01
LIP_VELOCITY_SCALE = 0.005
LIP_FEATURES = 2 * lips.N_LIP * 3  # positions and their changes


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


def fill_gaps(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(frames, ...) values with NaN frames (the face mesh skipped them) interpolated
    from their neighbours in time."""
    ok = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    if ok.all() or not ok.any():
        return np.nan_to_num(values).astype(np.float32)
    flat = values[ok].reshape(int(ok.sum()), -1)
    filled = np.stack([np.interp(times, times[ok], col) for col in flat.T], axis=1)
    return filled.reshape(values.shape).astype(np.float32)


def lips_input(lips: np.ndarray) -> np.ndarray:
    """(frames, N_LIP, 3) lip contours (gaps filled) -> (frames, LIP_FEATURES) float32:
    each point's position relative to its mean over the pass (the speaker's resting
    mouth shape drops out: what is left is how the mouth moves) and its change since
    the previous frame, on fixed scales (typical spreads in eye-distance units)."""
    x = lips.astype(np.float32)
    moved = (x - x.mean(axis=0, keepdims=True)) / LIP_POSITION_SCALE
    velocity = np.diff(x, axis=0, prepend=x[:1]) / LIP_VELOCITY_SCALE
    return np.concatenate([moved.reshape(len(x), -1), velocity.reshape(len(x), -1)], axis=1)


def sample_chunk(samples: np.ndarray, audio_t0: float, first: float, n: int,
                 rate: int = af.RATE, hop_s: float = SPEC.step_s / SPEC.mels_per_step,
                 ) -> np.ndarray:
    """The samples whose n analysis frames (af.power_frames) are centred at
    first + (k + 0.5) * hop_s; samples outside what `samples` holds count as silence."""
    if rate != af.RATE:
        raise ValueError(f"audio must be {af.RATE} Hz mono, got {rate} Hz")
    if abs(hop_s * rate - af.HOP) > 1e-6:
        raise ValueError("the model's mel hop must equal the audio feature hop")
    start = int(round((first + 0.5 * hop_s - audio_t0) * rate - af.WIN / 2))
    length = (n - 1) * af.HOP + af.WIN
    chunk = np.zeros(length, np.float32)
    lo, hi = max(start, 0), min(start + length, len(samples))
    if hi > lo:
        chunk[lo - start : hi - start] = samples[lo:hi]
    return chunk


def mel_frames(samples: np.ndarray, audio_t0: float, first: float, n: int,
               rate: int = af.RATE, hop_s: float = SPEC.step_s / SPEC.mels_per_step,
               ) -> np.ndarray:
    """(n, n_mels) log-mel in dB whose frame k is centred at first + (k + 0.5) * hop_s."""
    chunk = sample_chunk(samples, audio_t0, first, n, rate, hop_s)
    return af.log_mel(af.power_frames(chunk))[:n]


def normalise_mel(mel: np.ndarray) -> np.ndarray:
    """One pass's log-mel -> the model's input: floored below the loudest bin (silence
    and padding look alike), per-band mean removed (channel colour, gain), unit spread."""
    mel = np.maximum(mel, mel.max() - MEL_FLOOR_DB)
    mel = mel - mel.mean(axis=0, keepdims=True)
    return (mel / (mel.std() + 1e-3)).astype(np.float32)


def first_audio_time(t_start: float, centre: int = 0, spec: ModelSpec = SPEC) -> float:
    """Start of the audio a pass whose video starts at t_start reads, for the block of
    shifts centred on `centre` steps."""
    return t_start - (spec.max_shift + spec.margin + centre) * spec.step_s


def audio_input(samples: np.ndarray, audio_t0: float, t_start: float, centre: int = 0,
                spec: ModelSpec = SPEC, rate: int = af.RATE) -> np.ndarray:
    """(spec.audio_frames, n_mels) float32 model input for a pass whose video starts at
    t_start, shifts centred on `centre` steps: audio step i starts at
    first_audio_time + i * step_s."""
    first = first_audio_time(t_start, centre, spec)
    return normalise_mel(mel_frames(samples, audio_t0, first, spec.audio_frames, rate,
                                    spec.step_s / spec.mels_per_step))


def pair_index(spec: ModelSpec = SPEC, frames: int | None = None) -> np.ndarray:
    """(shifts, frames): the audio step of a pass that video step t pairs with under
    shift index i (offset (i - max_shift) steps, > 0: the audio leads, so the sound of
    picture time t sits at t - offset)."""
    i = np.arange(spec.shifts)[:, None]
    t = np.arange(spec.frames if frames is None else frames)[None, :]
    return t + 2 * spec.max_shift + spec.margin - i


def pairs_with_audio(t_start: float, offsets_s: np.ndarray, audio_lo: float, audio_hi: float,
                     n_steps: int, spec: ModelSpec = SPEC) -> np.ndarray:
    """(len(offsets), n_steps) bool: the audio that video step t under each offset is
    scored from (its partner step, the attention band and the encoder's reach) lies
    inside [audio_lo, audio_hi)."""
    t = t_start + np.arange(n_steps)[None, :] * spec.step_s
    partner = t - np.asarray(offsets_s)[:, None]
    reach = spec.margin * spec.step_s
    return (partner - reach >= audio_lo - 1e-6) & (partner + spec.step_s + reach
                                                  <= audio_hi + 1e-6)
