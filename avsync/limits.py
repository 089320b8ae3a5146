"""The allowed range of every numeric setting, checked the same way for the command
line and the monitor's TOML file: a value outside gets one line and exit 3, never a
traceback or a silently absurd measurement."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from avsync.errors import UsageError


@dataclass(frozen=True)
class Limit:
    lo: float
    hi: float
    unit: str
    why: str = ""  # said when the value is refused, so the user knows what the bound is for

    def check(self, value: object, name: str) -> float:
        """The value as a float, or UsageError naming the setting and its range."""
        number, problem = self._parse(value)
        if problem:
            raise UsageError(f"{name}: {problem}")
        return number

    def arg(self, name: str) -> Callable[[str], float]:
        """An argparse `type=`: the error reaches the user as the parser's one line
        ("argument --window: use 1 to 60 s, not 0.1 (...)")."""
        def parse(text: str) -> float:
            number, problem = self._parse(text)
            if problem:
                raise argparse.ArgumentTypeError(problem)
            return number
        parse.__name__ = name  # argparse names the type in some messages
        return parse

    def _parse(self, value: object) -> tuple[float, str | None]:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan, f"{value!r} is not a number"
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            unit = f" {self.unit}" if self.unit else ""
            why = f" ({self.why})" if self.why else ""
            return number, f"use {self.lo:g} to {self.hi:g}{unit}, not {value}{why}"
        return number, None


# the beep is found by demodulating 16 kHz audio: it needs a few samples per period
# and room below Nyquist (8 kHz)
TONE_HZ = Limit(50, 7000, "Hz", "the beep must sit well inside 16 kHz analysis audio")
# a window holds a few syllables: shorter ones measure noise (0.1 s read +243 ms on a
# clip that reads -169 ms)
WINDOW_S = Limit(1.0, 60.0, "s", "a window must hold a few syllables")
HOP_S = Limit(0.2, 60.0, "s")
# below one 25 fps frame there is one candidate offset and nothing to compare
MAX_OFFSET_MS = Limit(40, 2000, "ms", "from one frame to 2 s")
TIMEOUT_S = Limit(0.1, 3600, "s")
FILE_TIMEOUT_S = Limit(1, 7 * 86_400, "s")  # one input of a batch: a long file takes hours
RETRY_MAX_S = Limit(0.1, 86_400, "s")
OFFSET_MS = Limit(-10_000, 10_000, "ms")
DRIFT_PPM = Limit(-100_000, 100_000, "ppm")
DURATION_S = Limit(0.5, 86_400, "s")
PERIOD_S = Limit(0.2, 60, "s")
BITRATE = Limit(1000, 1e9, "bit/s")
MINUTES = Limit(0.1, 10_000, "min")
CONFIDENCE = Limit(0.0, 1.0, "")


def check_hop(hop_s: float, window_s: float) -> None:
    if hop_s > window_s:
        raise UsageError(f"--hop {hop_s:g} s is longer than --window {window_s:g} s: "
                         "windows would leave gaps")
