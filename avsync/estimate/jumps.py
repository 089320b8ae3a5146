"""Offset jumps: changes of the measured offset that persist (an edit, a splice, a
re-synced encoder), told apart from single bad windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Jump:
    index: int  # first window of the new level
    t: float  # its media time
    from_ms: float
    to_ms: float


def find_jumps(t: np.ndarray, offsets_ms: np.ndarray, min_step_ms: float,
               persist: int = 4) -> list[Jump]:
    """Jumps in a series of window offsets: `persist` consecutive windows that agree
    with each other (within min_step_ms) and all differ from the current level by more
    than min_step_ms. A lone outlier never makes a jump."""
    jumps: list[Jump] = []
    start = 0
    i = persist
    while i + persist <= len(offsets_ms):
        level = float(np.median(offsets_ms[max(start, i - 2 * persist) : i]))
        ahead = offsets_ms[i : i + persist]
        new = float(np.median(ahead))
        if (np.abs(ahead - level) > min_step_ms).all() and np.ptp(ahead) <= 2 * min_step_ms:
            jumps.append(Jump(i, float(t[i]), level, new))
            start = i
            i += persist
        else:
            i += 1
    return jumps
