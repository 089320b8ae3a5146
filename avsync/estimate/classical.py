"""The classical lip-sync scorer: lip opening against the speech envelope.

No training: for each candidate offset the envelope is read at the times that offset
implies and correlated (Pearson) with the inner-lip opening. The mouth moves before
the sound it shapes, so the envelope is read ARTICULATION_LEAD_S later than the
picture; that lead is fitted on trusted in-sync recordings, every source weighted
equally (tools/fit_zero.py), never on the validation sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from avsync.features.face import DETECT_EVERY

if TYPE_CHECKING:
    from avsync.estimate.offset import Curve
    from avsync.lipsync import FaceTrack
    from avsync.records import Window

# Sound follows the mouth by this. The median clip-level peak of opening-vs-envelope
# changes with no lead, per trusted source, averaged with the sources weighted
# equally: GRID s1 -2.3 ms (249 clips), Arabic TV news -42.6 ms (400 clips; 1.2 s
# each, so noisy: +-13 ms) -> 22 ms (`tools/evaluate.py --suite zero --method
# classical --lead-ms 0 --offsets 0 --cached --max-clips 400`, `tools/fit_zero.py`).
# The 83 ms it replaces came from preprocessed dataset crops and renders.
ARTICULATION_LEAD_S = 0.022


def zscore_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 1e-9)


SIGNALS = ("level", "change", "both")


def correlation_curve(
    video_t: np.ndarray,
    opening: np.ndarray,
    env_t: np.ndarray,
    env: np.ndarray,
    offsets_s: np.ndarray,
    lead_s: float = ARTICULATION_LEAD_S,
    signal: str = "both",
) -> np.ndarray:
    """Pearson correlation of opening(t) with env(t + lead - d), for each offset d.

    d > 0 means the audio leads: the sound of picture time t was captured at t - d.
    signal: "level" correlates the signals, "change" their frame-to-frame changes
    (onsets: sharper in time, blind to slow trends), "both" concatenates the two.
    """
    when = video_t[None, :] + lead_s - offsets_s[:, None]
    a = np.interp(when, env_t, env)
    v = opening[None, :].astype(np.float64)
    parts_a, parts_v = [], []
    if signal in ("level", "both"):
        parts_a.append(zscore_rows(a))
        parts_v.append(zscore_rows(v))
    if signal in ("change", "both"):
        parts_a.append(zscore_rows(np.diff(a, axis=1)))
        parts_v.append(zscore_rows(np.diff(v, axis=1)))
    if not parts_a:
        raise ValueError(f"signal {signal!r}: use one of {SIGNALS}")
    a, v = np.concatenate(parts_a, axis=1), np.concatenate(parts_v, axis=1)
    return (a * v).mean(axis=1)  # with "both": the mean of the two correlations


class ClassicalScorer:
    """The correlation scorer behind the lip-sync analyser's Scorer interface."""

    method = "lipsync-classical"
    # prominence (correlation units) that maps to confidence 0.63, and below which a
    # window is "low confidence" rather than measured
    confidence_scale = 0.25
    min_prominence = 0.1
    confidence_knots = None
    landmark_every = 1  # its signal is the lip opening the mesh measures, every frame
    detect_every = DETECT_EVERY

    def __init__(self, lead_s: float = ARTICULATION_LEAD_S, signal: str = "change") -> None:
        if signal not in SIGNALS:
            raise ValueError(f"signal {signal!r}: use one of {SIGNALS}")
        self.lead_s, self.signal = lead_s, signal

    def candidate_offsets(self, max_offset_s: float, fps: float) -> np.ndarray:
        from avsync.estimate.offset import candidate_offsets

        return candidate_offsets(max_offset_s, 1.0 / fps)  # one video frame per step

    def audio_margin_s(self, max_offset_s: float) -> float:
        return max_offset_s + abs(self.lead_s) + 0.05

    def scores(self, track: FaceTrack, window: Window, offsets: np.ndarray) -> Curve:
        from avsync.estimate.offset import Curve
        from avsync.features import audio as af

        power = af.power_frames(window.audio)
        env_t = af.frame_times(len(power), window.audio_t0)
        env = af.envelope(af.speech_band_db(power))
        return Curve(offsets, correlation_curve(track.times, track.opening, env_t, env,
                                                offsets, self.lead_s, self.signal))

    def describe(self) -> dict:
        return {"articulation_lead_ms": self.lead_s * 1e3, "signal": self.signal}
