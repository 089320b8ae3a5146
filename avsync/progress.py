"""A one-line progress bar on a terminal; silent when stderr is not one."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable(media_t, duration_s); redraws at most 10 times a second."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, t: float, duration_s: float | None) -> None:
        now = time.monotonic()
        if now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if duration_s:
            share = min(1.0, max(0.0, t / duration_s))
            filled = int(share * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"\r{self.label} [{bar}] {share:4.0%} {t:7.1f}/{duration_s:.1f} s"
        else:
            text = f"\r{self.label} {t:7.1f} s"
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
