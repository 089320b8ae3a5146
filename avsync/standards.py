"""Broadcast A/V sync tolerances, as (lead, lag) limits in ms (lead > 0, lag < 0)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from avsync.errors import UsageError


@dataclass(frozen=True)
class Tolerance:
    name: str  # the --standard key, or "custom"
    title: str  # how people write it
    lead_ms: float  # largest allowed offset with the audio leading (> 0)
    lag_ms: float  # most negative allowed offset, audio late (< 0)

    def contains(self, offset_ms: float) -> bool:
        return self.lag_ms <= offset_ms <= self.lead_ms

    @property
    def band(self) -> str:
        return f"{self.lead_ms:+g}/{self.lag_ms:+g} ms"


STANDARDS: dict[str, Tolerance] = {
    # EBU R37: end-to-end, sound no more than 40 ms early or 60 ms late.
    "ebu-r37": Tolerance("ebu-r37", "EBU R37", 40.0, -60.0),
    # ITU-R BT.1359: acceptability thresholds (detectability is +45/-125).
    "itu-r-bt1359": Tolerance("itu-r-bt1359", "ITU-R BT.1359", 90.0, -185.0),
    # ATSC IS-191: at the encoder input.
    "atsc-is191": Tolerance("atsc-is191", "ATSC IS-191", 15.0, -45.0),
}
DEFAULT_STANDARD = "ebu-r37"


def get_standard(name: str) -> Tolerance:
    try:
        return STANDARDS[name.lower()]
    except KeyError:
        known = ", ".join(STANDARDS)
        raise UsageError(f"unknown standard {name!r}; use one of {known}") from None


def parse_tolerance(text: str) -> Tolerance:
    """'+40,-60' -> lead 40 ms, lag -60 ms."""
    try:
        lead, lag = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"tolerance {text!r} is not LEAD,LAG in ms (e.g. +40,-60)") from None
    if not (math.isfinite(lead) and math.isfinite(lag)):
        raise UsageError(f"tolerance {text}: LEAD and LAG must be numbers of ms (e.g. +40,-60)")
    if lead < 0 or lag > 0:
        raise UsageError(f"tolerance {text}: LEAD must be >= 0 and LAG <= 0 (e.g. +40,-60)")
    return Tolerance("custom", "custom", lead, lag)
