"""One media clock for both streams of a source.

Every frame and audio block is placed by its presentation time in seconds:
``pts * time_base``, unwrapped (MPEG-TS carries 33-bit PTS that wrap every 26.5 h),
minus the source's common origin. Timestamp jumps (splices, encoder restarts) are
re-based so media time keeps moving forward; both streams of one jump get the *same*
shift, so the A/V relation after the jump is exactly the source's.

A step is a jump only once the stream's next items go on from it. Items out of
timestamp order are strays, not jumps: re-basing a stream on one moves its A/V relation
for the rest of the input. Over lossy RTSP the picture sometimes carries two frames
stamped 0.72 s ahead; the old clock re-based on each, and the soak's test signals read
2 x 720 = 1,440 ms off for the rest of the connection. Strays are dropped (or, when
already placed as a gap, not followed), counted and reported to ``on_event``.
"""

from __future__ import annotations

from collections.abc import Callable
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
# A jump is taken once this many items in a row (the first included) go on from it;
# until then they are held back and, if the stream returns to its old time, dropped
# as strays. At a real jump the first ones are lost: 2 frames, ~40-60 ms of audio.
CONFIRM_ITEMS = 3
# A forward step this long that the stream steps back from within CONFIRM_ITEMS items
# was strays stamped ahead. (Forward steps up to DEFAULT_FORWARD_JUMP_S are taken as
# gaps at once: a 1 fps stream steps 1 s every frame.)
FORWARD_STRAY_S = 0.5


def pts_to_seconds(pts: int, time_base: Fraction) -> float:
    """The one place where integer PTS become float seconds.

    Integer product, then one correctly rounded division: exact as Fraction
    arithmetic gives, at a tenth of its cost (this runs for every frame and block).
    """
    return pts * time_base.numerator / time_base.denominator


@dataclass(frozen=True)
class ClockEvent:
    """A jump taken or strays dropped in one stream, for the log: a jump that only one
    stream of a source takes moves its A/V relation, so it must be visible."""

    kind: str  # "jump" or "stray"
    stream: str  # "video" or "audio"
    step_s: float  # the raw step away from where the stream's previous item ended
    media_s: float  # where it happened, on the media clock
    items: int = 1
    with_stream: str = ""  # the other stream that took the same jump first

    def describe(self) -> str:
        if self.kind == "jump":
            how = (f"with the {self.with_stream}" if self.with_stream
                   else "re-based to run on")
            return (f"{self.stream} timestamps jumped {self.step_s:+.3f} s at "
                    f"{self.media_s:.2f} s ({how})")
        return (f"{self.items} {self.stream} item(s) {self.step_s:+.3f} s out of "
                f"timestamp order at {self.media_s:.2f} s dropped")


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
        on_event: Callable[[ClockEvent], None] | None = None,
    ) -> None:
        if forward_jump_s <= 0 or backward_jump_s < 0:
            raise ValueError("jump thresholds must be positive")
        self.origin_s = origin_s
        self.wrap_bits = wrap_bits
        self.forward_jump_s = forward_jump_s
        self.backward_jump_s = backward_jump_s
        self.segments: list[_Segment] = [_Segment(0.0, 0.0, "")]
        self.jumps = 0
        self.strays = 0  # items dropped because their stream went back to its old time
        self.on_event = on_event  # told of each jump and stray (the producer logs them)

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

    def _note(self, event: ClockEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


class StreamClock:
    """Maps one stream's PTS to media seconds. Call it once per decoded item, in order."""

    def __init__(self, clock: MediaClock, name: str, time_base: Fraction) -> None:
        self.clock = clock
        self.name = name
        self.time_base = time_base
        self.segment = 0
        self._last_pts: int | None = None
        self._expected_raw_s: float | None = None
        # items stepped away from the expected time, held until the stream shows
        # whether it goes on from them (a jump) or from its old time (they were strays)
        self._held: list[float] = []
        self._held_expected_s = 0.0
        # where the stream was expected before its latest forward step of over
        # FORWARD_STRAY_S, and how many items it has run on since (see CONFIRM_ITEMS)
        self._before_forward_step: tuple[float, int] | None = None

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

    def __call__(self, pts: int, duration_s: float) -> tuple[float, bool] | None:
        """Media time of an item with this PTS lasting duration_s, and whether a jump
        was taken at it; None for an item held back or dropped (see CONFIRM_ITEMS)."""
        pts = self._unwrap(pts)
        raw = pts_to_seconds(pts, self.time_base)
        duration_s = max(duration_s, 0.0)
        jumped = False
        if self._expected_raw_s is not None:
            step = raw - self._expected_raw_s
            if self._held:
                held_step = raw - self._held_expected_s
                if self._usual(step) and abs(step) <= abs(held_step):
                    self._drop_held()  # back on its old time: the held items were strays
                elif self._usual(held_step):
                    self._held.append(raw)
                    self._held_expected_s = raw + duration_s
                    if len(self._held) < CONFIRM_ITEMS:
                        return None
                    jump_step = self._held_step_s()
                    at = self._media_s(self._expected_raw_s)
                    self._held = []
                    self.segment = self.clock._on_jump(self, jump_step)
                    jumped = True
                    opener = self.clock.segments[self.segment].opened_by
                    self.clock._note(ClockEvent("jump", self.name, jump_step, at,
                                                with_stream=opener if opener != self.name
                                                else ""))
                else:  # neither: a new candidate (the earlier ones were strays)
                    self._drop_held()
                    return self._hold(raw, duration_s)
            elif self._back_from_forward_strays(raw, step):
                pass  # the items since a forward step were the strays: take this as is
            elif not self._usual(step):
                return self._hold(raw, duration_s)
        if jumped or self._expected_raw_s is None:
            self._before_forward_step = None
        elif raw - self._expected_raw_s > FORWARD_STRAY_S:
            self._before_forward_step = (self._expected_raw_s, 0)
        elif self._before_forward_step is not None:
            before, since = self._before_forward_step
            self._before_forward_step = (before, since + 1) if since + 1 < CONFIRM_ITEMS \
                else None
        if self.clock.origin_s is None:
            self.clock.origin_s = raw
        self._last_pts = pts
        self._expected_raw_s = raw + duration_s
        return self._media_s(raw), jumped

    def _media_s(self, raw: float) -> float:
        return raw + self.clock.segments[self.segment].shift_s - (self.clock.origin_s or 0.0)

    def _back_from_forward_strays(self, raw: float, step: float) -> bool:
        """A step back to where the stream was before a forward step taken within the
        last CONFIRM_ITEMS items: those items were strays stamped ahead (already placed,
        so they stay; the stream must not be re-based on its return)."""
        if self._before_forward_step is None or step >= -self.clock.backward_jump_s:
            return False
        before, since = self._before_forward_step
        if not self._usual(raw - before):
            return False
        self._before_forward_step = None
        self.clock.strays += since + 1
        self.clock._note(ClockEvent("stray", self.name, self._expected_raw_s - before,
                                    self._media_s(before), since + 1))
        return True

    def _usual(self, step: float) -> bool:
        return -self.clock.backward_jump_s <= step <= self.clock.forward_jump_s

    def _hold(self, raw: float, duration_s: float) -> None:
        self._held = [raw]
        self._held_expected_s = raw + duration_s

    def _held_step_s(self) -> float:
        """The step the first held item made (the expected time waits while holding)."""
        return self._held[0] - self._expected_raw_s

    def _drop_held(self) -> None:
        self.clock.strays += len(self._held)
        self.clock._note(ClockEvent("stray", self.name, self._held_step_s(),
                                    self._media_s(self._expected_raw_s), len(self._held)))
        self._held = []
