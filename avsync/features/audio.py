"""Audio features on the media clock: log-mel frames, the speech envelope, activity.

Input is the mono 16 kHz float32 the rings hold; frame k of a feature computed from
samples starting at t0 is centred at ``t0 + (k * HOP + WIN / 2) / rate``.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000
WIN = 400  # 25 ms
HOP = 160  # 10 ms: 100 feature frames per second
N_MELS = 40
SPEECH_BAND_HZ = (300.0, 3400.0)  # where the energy of voiced speech is
SPEECH_LEVEL_DB = -50.0  # band level (dBFS) above which a 10 ms frame counts as sound


def _mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_filters(n_mels: int = N_MELS, n_fft: int = 512, rate: int = RATE) -> np.ndarray:
    edges_mel = np.linspace(_mel(np.array(20.0)), _mel(np.array(rate / 2)), n_mels + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins - lo) / (mid - lo)
    down = (hi - bins) / (hi - mid)
    return np.maximum(0, np.minimum(up, down)).astype(np.float32)


_FILTERS = _mel_filters()
_WINDOW = np.hanning(WIN).astype(np.float32)
_BAND = (np.fft.rfftfreq(512, 1 / RATE) >= SPEECH_BAND_HZ[0]) & (
    np.fft.rfftfreq(512, 1 / RATE) <= SPEECH_BAND_HZ[1])


def power_frames(samples: np.ndarray) -> np.ndarray:
    """|STFT|^2 of 25 ms Hann frames every 10 ms: (n_frames, 257)."""
    if len(samples) < WIN:
        return np.zeros((0, 257), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, WIN)[::HOP] * _WINDOW
    return (np.abs(np.fft.rfft(frames, 512)) ** 2).astype(np.float32)


def power_frames_between(samples: np.ndarray, samples_t0: float, t0: float, t1: float
                         ) -> np.ndarray:
    """The rows of power_frames(samples) whose frame centre lies in [t0, t1), computed
    without the frames outside (a scorer's audio margins hold as much again)."""
    n = (len(samples) - WIN) // HOP + 1 if len(samples) >= WIN else 0
    # a frame or two of slack either side, then the exact test on frame_times
    lo = max(0, int(np.floor(((t0 - samples_t0) * RATE - WIN / 2) / HOP)) - 1)
    hi = min(n, int(np.ceil(((t1 - samples_t0) * RATE - WIN / 2) / HOP)) + 2)
    if hi <= lo:
        return np.zeros((0, 257), np.float32)
    times = frame_times(hi - lo, samples_t0 + lo * HOP / RATE)
    keep = (times >= t0) & (times < t1)
    power = power_frames(samples[lo * HOP : (hi - 1) * HOP + WIN])
    return power[keep]


def frame_times(n_frames: int, t0: float) -> np.ndarray:
    """Media time of the centre of each feature frame."""
    return t0 + (np.arange(n_frames) * HOP + WIN / 2) / RATE


def log_mel(power: np.ndarray) -> np.ndarray:
    """(n_frames, N_MELS) log-mel energies in dB."""
    return 10 * np.log10(power @ _FILTERS.T + 1e-10)


def speech_band_db(power: np.ndarray) -> np.ndarray:
    """Per frame, the level of the speech band in dBFS (a full-scale sine is 0 dB)."""
    # normalise: a full-scale sine's Hann frame has power (WIN/4)^2 * 2 in its bins
    band = power[:, _BAND].sum(axis=1) / ((WIN / 4) ** 2 * 2)
    return 10 * np.log10(band + 1e-12)


def envelope(band_db: np.ndarray, floor_db: float = SPEECH_LEVEL_DB - 10) -> np.ndarray:
    """Speech envelope for correlation: band level above a floor, in dB (>= 0)."""
    return np.maximum(band_db - floor_db, 0.0)
