"""One media clock for both streams of a source.

Every frame and audio block is placed by its presentation time in seconds:
``pts * time_base``, unwrapped (MPEG-TS carries 33-bit PTS that wrap every 26.5 h),
minus the source's common origin. Timestamp jumps (splices, encoder restarts) are
re-based so media time keeps moving forward; both streams of one jump get the *same*
shift, so the A/V relation after the jump is exactly the source's.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

MPEGTS_PTS_BITS = 33

# A jump is a step of the raw clock away from where the stream's previous item ended.
# Backwards steps are never legal; forward steps up to this size are gaps (lost
# packets, VFR stills) and keep the source's timing.
DEFAULT_FORWARD_JUMP_S = 5.0
DEFAULT_BACKWARD_JUMP_S = 0.1
# Two streams that jump within this much of the same size saw the same discontinuity.
SAME_JUMP_TOLERANCE_S = 1.0


def pts_to_seconds(pts: int, time_base: Fraction) -> float:
    """The one place where integer PTS become float seconds.

    Integer product, then one correctly rounded division: exact as Fraction
    arithmetic gives, at a tenth of its cost (this runs for every frame and block).
    """
    return pts * time_base.numerator / time_base.denominator


@dataclass
class _Segment:
    shift_s: float  # added to raw seconds inside this segment
    raw_step_s: float  # the raw step that opened it (0 for the first)
    opened_by: str


class MediaClock:
    """Shared by the stream clocks of one source; counts jumps."""

    def __init__(
        self,
        origin_s: float | None = None,
        wrap_bits: int | None = None,
        forward_jump_s: float = DEFAULT_FORWARD_JUMP_S,
        backward_jump_s: float = DEFAULT_BACKWARD_JUMP_S,
    ) -> None:
        if forward_jump_s <= 0 or backward_jump_s < 0:
            raise ValueError("jump thresholds must be positive")
        self.origin_s = origin_s
        self.wrap_bits = wrap_bits
        self.forward_jump_s = forward_jump_s
        self.backward_jump_s = backward_jump_s
        self.segments: list[_Segment] = [_Segment(0.0, 0.0, "")]
        self.jumps = 0

    def stream(self, name: str, time_base: Fraction) -> StreamClock:
        return StreamClock(self, name, time_base)

    def _on_jump(self, stream: StreamClock, raw_step_s: float) -> int:
        """Pick or open the segment a jumping stream continues in; returns its index."""
        for index in range(stream.segment + 1, len(self.segments)):
            seg = self.segments[index]
            if (
                seg.opened_by != stream.name
                and abs(seg.raw_step_s - raw_step_s) <= SAME_JUMP_TOLERANCE_S
            ):
                return index  # the other stream already crossed this discontinuity
        shift = self.segments[stream.segment].shift_s - raw_step_s
        self.segments.append(_Segment(shift, raw_step_s, stream.name))
        self.jumps += 1
        return len(self.segments) - 1


class StreamClock:
    """Maps one stream's PTS to media seconds. Call it once per decoded item, in order."""

    def __init__(self, clock: MediaClock, name: str, time_base: Fraction) -> None:
        self.clock = clock
        self.name = name
        self.time_base = time_base
        self.segment = 0
        self._last_pts: int | None = None
        self._expected_raw_s: float | None = None

    def _unwrap(self, pts: int) -> int:
        bits = self.clock.wrap_bits
        if bits is None or self._last_pts is None:
            return pts
        period = 1 << bits
        pts = pts % period + (self._last_pts // period) * period
        # choose the copy of pts nearest to the previous one
        if pts - self._last_pts > period // 2:
            pts -= period
        elif self._last_pts - pts > period // 2:
            pts += period
        return pts

    def __call__(self, pts: int, duration_s: float) -> tuple[float, bool]:
        """Media time of an item with this PTS lasting duration_s, and whether it jumped."""
        pts = self._unwrap(pts)
        raw = pts_to_seconds(pts, self.time_base)
        jumped = False
        if self._expected_raw_s is not None:
            step = raw - self._expected_raw_s
            if step > self.clock.forward_jump_s or step < -self.clock.backward_jump_s:
                self.segment = self.clock._on_jump(self, step)
                jumped = True
        if self.clock.origin_s is None:
            self.clock.origin_s = raw
        self._last_pts = pts
        self._expected_raw_s = raw + max(duration_s, 0.0)
        return raw + self.clock.segments[self.segment].shift_s - self.clock.origin_s, jumped
