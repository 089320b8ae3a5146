"""Live estimate of one stream from its per-window (or per-event) measurements.

The current offset is the median of the last three measurements (of the last
`recent_s` seconds), so one bad window cannot move it and a real change shows after
two; drift is a Theil-Sen line over
the last `drift_horizon_s`; a jump is an offset change that persists (estimate.jumps).
Memory is bounded: only `keep_s` of history is kept.

After a (re)connection the tracker is *settling* and publishes nothing until two
measurements that share no media (`settle_gap_s` apart: 3 s windows overlap their
neighbours) agree within `settle_ms` (a frame; test-signal events, which are exact,
within EXACT_SETTLE_MS): the first window of a connection can be read off a stream
whose timing is still settling (the soak runs saw one read 475 ms off, a test-signal
event 1,440 ms off), and one reading is no estimate. Until `smooth` readings have
come since, the published median also counts the earlier reading the confirming one
agreed with: the median of two is their mean, so without it one damaged reading right
after settling (a flash seen a frame late) would move the first published value by
half its error (the 60-minute soak read test signals 18.7 ms off that way).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from avsync.estimate.jumps import Jump, find_jumps
from avsync.estimate.offset import MEASURED
from avsync.estimate.robust import theil_sen
from avsync.standards import Tolerance

# test-signal events are measured to the sample: two that differ by more than this are
# not the same offset (a flash in a damaged frame is seen a frame late)
EXACT_SETTLE_MS = 2.0


@dataclass(frozen=True)
class LiveEstimate:
    t: float  # media time of the newest measurement used
    offset_ms: float
    confidence: float
    drift_ms_per_min: float | None
    in_tolerance: bool
    method: str


class LiveTracker:
    def __init__(self, tolerance: Tolerance, smooth: int = 3, recent_s: float = 30.0,
                 drift_horizon_s: float = 300.0, min_drift_span_s: float = 60.0,
                 keep_s: float = 600.0, jump_step_ms: float = 80.0,
                 settle_ms: float = 40.0, settle_gap_s: float = 3.0) -> None:
        self.tolerance = tolerance
        self.settle_ms, self.settle_gap_s = settle_ms, settle_gap_s
        self.smooth, self.recent_s = smooth, recent_s
        self.drift_horizon_s, self.min_drift_span_s = drift_horizon_s, min_drift_span_s
        self.keep_s, self.jump_step_ms = keep_s, jump_step_ms
        self.outcomes: Counter[str] = Counter()  # windows by outcome, ever
        self.jumps: list[Jump] = []  # ever (bounded by what persists: rare)
        self._points: deque[tuple[float, float, float, str]] = deque()  # t, ms, conf, method
        self._since_jump_t = -np.inf
        self._settled_t: float | None = None  # first measurement that may be published
        # the earlier reading the confirming one agreed with (t, ms, conf, method)
        self._anchor: tuple[float, float, float, str] | None = None
        # the stream thread adds; the metrics scrape and the live view read
        self._lock = threading.RLock()

    def add(self, t: float, status: str, offset_ms: float | None = None,
            confidence: float = 0.0, method: str = "") -> Jump | None:
        """One window's outcome; returns a new jump when this measurement confirms one."""
        with self._lock:
            self.outcomes[status] += 1
            if status != MEASURED or offset_ms is None:
                return None
            self._points.append((t, float(offset_ms), float(confidence), method))
            while self._points and self._points[0][0] < t - self.keep_s:
                self._points.popleft()
            if self._settled_t is None:
                self._anchor = self._earlier_agreeing(t, float(offset_ms), method)
                if self._anchor is not None:
                    self._settled_t = t
            return self._check_jump()

    def _earlier_agreeing(self, t: float, offset_ms: float,
                          method: str) -> tuple[float, float, float, str] | None:
        """The earlier measurement of this connection that shares no media with this one
        and reads the same offset (the closest one), if any."""
        within = EXACT_SETTLE_MS if method == "test-signal" else self.settle_ms
        agreeing = [p for p in self._points if p[0] <= t - self.settle_gap_s
                    and p[3] == method and abs(p[1] - offset_ms) <= within]
        return min(agreeing, key=lambda p: abs(p[1] - offset_ms), default=None)

    def reset(self) -> None:
        """A new connection: old measurements describe another session of the stream."""
        with self._lock:
            self._settled_t, self._anchor = None, None
            self._points.clear()
            self._since_jump_t = -np.inf

    @property
    def settling(self) -> bool:
        """Measured since the last (re)connection, but nothing confirmed yet."""
        with self._lock:
            return self._settled_t is None and bool(self._points)

    def current(self) -> LiveEstimate | None:
        """The published estimate: None while there is none, or while settling."""
        with self._lock:
            if self._settled_t is None or not self._points:
                return None
            newest = self._points[-1][0]
            # from the confirming measurement on: never the readings before it
            recent = [p for p in self._points if p[0] >= max(newest - self.recent_s,
                                                              self._since_jump_t,
                                                              self._settled_t)]
            anchor = self._anchor
            if (len(recent) < self.smooth and anchor is not None
                    and anchor[0] >= max(newest - self.recent_s, self._since_jump_t)):
                recent = [anchor, *recent]  # the settling pair stays in the median
            recent = recent[-self.smooth :]
            offset = float(np.median([p[1] for p in recent]))
            confidence = float(np.median([p[2] for p in recent]))
            return LiveEstimate(newest, offset, confidence, self.drift_ms_per_min(),
                                self.tolerance.contains(offset), recent[-1][3])

    def drift_ms_per_min(self) -> float | None:
        with self._lock:
            if not self._points:
                return None
            newest = self._points[-1][0]
            since = max(newest - self.drift_horizon_s, self._since_jump_t)
            pts = [p for p in self._points if p[0] >= since]
            if len(pts) < 5 or pts[-1][0] - pts[0][0] < self.min_drift_span_s:
                return None
            fit = theil_sen(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
            return float(fit.slope * 60)

    def _check_jump(self) -> Jump | None:
        pts = [p for p in self._points if p[0] >= self._since_jump_t]
        if len(pts) < 8:
            return None
        found = find_jumps(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]),
                           self.jump_step_ms)
        if not found:
            return None
        jump = found[-1]
        self._since_jump_t = jump.t  # the level before it no longer describes the stream
        self.jumps.append(jump)
        return jump
