"""Score curves over candidate offsets -> offset, confidence, or no estimate.

A curve holds one score per candidate offset (higher = better match), candidates on
a regular grid in seconds (> 0: audio leads). The peak is refined below one grid
step by a parabola through it and its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASURED, NO_FACE, NO_SPEECH, FLAT = "measured", "no_face", "no_speech", "low_confidence"


@dataclass(frozen=True)
class Curve:
    offsets_s: np.ndarray  # candidate offsets, ascending, regular step
    scores: np.ndarray  # same length; higher = better
    # how much evidence stands behind the scores, in the scorer's units (the sync
    # model: the video steps its mean centred scores average over; classical: 1)
    weight: float = 1.0

    @property
    def step_s(self) -> float:
        return float(self.offsets_s[1] - self.offsets_s[0])


@dataclass(frozen=True)
class OffsetEstimate:
    t: float  # media time the estimate is for (window centre)
    status: str  # MEASURED or why not
    offset_s: float | None = None
    confidence: float = 0.0
    prominence: float = 0.0  # (peak - the typical score away from it) x curve weight


def candidate_offsets(max_offset_s: float, step_s: float) -> np.ndarray:
    if max_offset_s <= 0 or step_s <= 0:
        raise ValueError("offset range and step must be positive")
    k = int(round(max_offset_s / step_s))
    return np.arange(-k, k + 1) * step_s


def peak(curve: Curve, exclude_steps: int = 2) -> tuple[float, float]:
    """(refined offset of the best score, its prominence)."""
    s = curve.scores
    if not np.isfinite(s).any():  # NaN: offsets the scorer could not score
        return 0.0, float("nan")
    i = int(np.nanargmax(s))
    offset = float(curve.offsets_s[i])
    if 0 < i < len(s) - 1:
        a, b, c = s[i - 1], s[i], s[i + 1]
        denom = a - 2 * b + c
        if denom < 0:  # False for NaN neighbours: then no refinement
            offset += 0.5 * (a - c) / denom * curve.step_s
    away = np.isfinite(s)
    away[max(0, i - exclude_steps) : i + exclude_steps + 1] = False
    rest = s[away]
    prominence = float(s[i] - np.median(rest)) if rest.size else 0.0
    return offset, prominence


def confidence_from_prominence(prominence: float, scale: float,
                               knots: np.ndarray | None = None) -> float:
    """Map a peak's evidence to 0..1: through fitted (evidence, share right) knots when
    given (a monotone fit, interpolated in log evidence), else 1 - exp(-e / scale)."""
    if knots is not None and len(knots):
        if prominence < knots[0, 0]:  # below the fitted range: down to 0 at no evidence
            return float(knots[0, 1] * max(prominence, 0.0) / knots[0, 0])
        return float(np.interp(np.log(prominence), np.log(knots[:, 0]), knots[:, 1]))
    return float(1.0 - np.exp(-max(prominence, 0.0) / scale))


def estimate(t: float, curve: Curve, scale: float, min_prominence: float,
             knots: np.ndarray | None = None) -> OffsetEstimate:
    """The curve's peak, with a confidence from its prominence times the curve's weight
    (a peak that stands out over many steps is surer than over a few)."""
    offset, prominence = peak(curve)
    evidence = prominence * curve.weight
    confidence = (confidence_from_prominence(evidence, scale, knots)
                  if np.isfinite(evidence) else 0.0)
    if not np.isfinite(evidence) or evidence < min_prominence:
        return OffsetEstimate(t, FLAT, None, confidence, evidence)
    return OffsetEstimate(t, MEASURED, offset, confidence, evidence)
