"""Flash/beep test signals: detected and measured directly, no model.

Flash onsets are frame-exact (the first frame whose mean luma rises well above the
recent baseline). Beep onsets are placed to a fraction of a sample: the audio is
demodulated at the tone frequency, and the onset is where the tone's amplitude
crosses half of its plateau, interpolated between samples. A one-period boxcar makes
that rise a straight line centred on the true onset, so half-height is the onset.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from avsync.estimate.robust import theil_sen
from avsync.records import Window

DEFAULT_TONE_HZ = 1000.0
# A beep this close to half a period from its flash is as near the next flash as this
# one: +offset and -offset are equally likely (detection is sub-millisecond; this
# leaves room for drift across one period).
AMBIGUOUS_MARGIN_S = 0.04
# A beep read from just before to just after the end of a hole in the audio (lost
# packets, filled with silence) may have begun inside the hole: it is heard from the
# first frame decoded after it, which fades in (its overlap-add half is missing), so
# the onset reads up to a codec frame late (AAC: 21-46 ms; the 60-minute soak read
# 5-37 ms off so). Such a beep is not measured.
HOLE_GUARD_S = (-0.003, 0.05)  # onset minus hole end


class FlashDetector:
    """(t, mean luma) per frame -> onset time of a flash, or None."""

    def __init__(self, min_contrast: float = 40.0, history: int = 9) -> None:
        if min_contrast <= 0:
            raise ValueError("min_contrast must be positive (luma levels, 0..255)")
        self.min_contrast = min_contrast
        self.history = history
        self.reset()

    def reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.history)
        self._flash_base: float | None = None  # baseline while a flash is on

    def __call__(self, t: float, luma: float) -> float | None:
        if self._flash_base is not None:
            if luma < self._flash_base + self.min_contrast / 2:
                self._flash_base = None
                self._recent.append(luma)
            return None
        if len(self._recent) >= 3:
            ordered = sorted(self._recent)  # a median of <= 9 values; np.median is slower
            mid = len(ordered) // 2
            base = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
            if luma - base >= self.min_contrast:
                self._flash_base = base
                return t
        self._recent.append(luma)
        return None


class BeepDetector:
    """Blocks of mono audio (with the time of their first sample) -> beep onset times."""

    def __init__(
        self,
        rate: int,
        tone_hz: float = DEFAULT_TONE_HZ,
        min_duration_s: float = 0.02,
        min_level: float = 0.01,
        min_purity: float = 0.8,
    ) -> None:
        if not 0 < tone_hz < rate / 2:
            raise ValueError(f"tone {tone_hz} Hz must lie below Nyquist ({rate / 2} Hz)")
        self.rate = rate
        self.tone_hz = tone_hz
        self.min_duration_s = min_duration_s
        self.min_level = min_level  # amplitude, full scale 1.0 (0.01 = -40 dBFS)
        self.min_purity = min_purity  # share of the power that is the tone
        # one tone period: the rise of the demodulated amplitude lasts exactly this
        self._short = max(2, round(rate / tone_hz))
        # ten periods: resolves the tone from broadband sound (speech, noise)
        self._long = 10 * self._short
        self.reset()

    def _carrier(self, n: int) -> np.ndarray:
        """exp(-j w k) for k < n, cached: only the magnitude is used downstream, so the
        phase may restart at every buffer start."""
        if len(self._carrier_cache) < n:
            k = np.arange(max(n, 2 * len(self._carrier_cache)))
            self._carrier_cache = np.exp(-2j * math.pi * self.tone_hz / self.rate * k)
        return self._carrier_cache[:n]

    def reset(self) -> None:
        self._carrier_cache = np.zeros(0, np.complex128)
        self._buf = np.zeros(0, np.float32)
        self._buf_t0 = 0.0
        self._last_onset = -math.inf

    def __call__(self, samples: np.ndarray, t0: float) -> list[float]:
        if len(samples) == 0:
            return []
        expected = self._buf_t0 + len(self._buf) / self.rate
        if len(self._buf) == 0 or abs(t0 - expected) > 1.5 / self.rate:
            self._buf, self._buf_t0 = samples.astype(np.float32), t0
        else:
            self._buf = np.concatenate([self._buf, samples])
        onsets, keep_from = self._scan(self._buf)
        keep_from = min(keep_from, max(0, len(self._buf) - 2 * self._long))
        self._buf_t0 += keep_from / self.rate
        self._buf = self._buf[keep_from:]
        return onsets

    def _box(self, x: np.ndarray, width: int) -> np.ndarray:
        csum = np.concatenate([[0], np.cumsum(x)])
        return (csum[width:] - csum[:-width]) / width

    def _scan(self, buf: np.ndarray) -> tuple[list[float], int]:
        """Onsets of complete bursts in buf, and where to keep buf from."""
        n = len(buf)
        if n < 2 * self._long:
            return [], 0
        base = buf * self._carrier(n)
        amp_long = 2 * np.abs(self._box(base, self._long))
        power_long = self._box(buf.astype(np.float64) ** 2, self._long)
        purity = np.divide(amp_long**2 / 2, power_long, out=np.zeros_like(power_long),
                           where=power_long > 1e-12)
        active = (amp_long > self.min_level) & (purity > self.min_purity)
        amp_short = 2 * np.abs(self._box(base, self._short))
        half_short = (self._short - 1) / 2
        half_long = (self._long - 1) / 2

        onsets: list[float] = []
        edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop >= len(active):  # the burst runs past the data: wait for more
                return onsets, max(0, start - self._long)
            if (stop - start) / self.rate < self.min_duration_s - self._long / self.rate:
                continue
            shift = half_long - half_short  # long-box index -> short-box index, same centre
            onset = self._onset(amp_short, int(start + shift), int(stop + shift))
            if onset is None:
                continue
            t = self._buf_t0 + (onset + half_short) / self.rate
            if t - self._last_onset > 2 * self.min_duration_s:
                onsets.append(t)
                self._last_onset = t
        return onsets, n

    def _onset(self, amp: np.ndarray, start: int, stop: int) -> float | None:
        """Sub-sample index where amp first crosses half its plateau.

        start/stop bound the burst as the long box saw it: the tone must fill most of
        the long box before it counts, so the rise lies within a long box of start.
        """
        plateau = amp[start + self._long : min(len(amp), stop)]
        if len(plateau) == 0:
            return None
        half = float(np.median(plateau)) / 2
        lo = max(1, start - self._long - self._short)
        seg = amp[lo : start + self._long]
        above = np.flatnonzero(seg >= half)
        if len(above) == 0 or above[0] == 0:
            return None
        i = lo + int(above[0])
        a, b = amp[i - 1], amp[i]
        return i - 1 + float((half - a) / (b - a)) if b > a else float(i)


@dataclass(frozen=True)
class PairedEvent:
    flash_t: float
    beep_t: float

    @property
    def offset_s(self) -> float:
        """> 0: the beep came first, the audio leads."""
        return self.flash_t - self.beep_t


def pair_events(
    flashes: list[float], beeps: list[float], max_offset_s: float, barriers: list[float] = (),
    ambiguous: list[float] | None = None,
) -> list[PairedEvent]:
    """Mutually nearest flash/beep pairs within max_offset_s, never across a barrier.

    A flash whose two nearest beeps are equally near (within AMBIGUOUS_MARGIN_S) pairs
    with neither; its time goes to `ambiguous` when a list is given.
    """
    if not flashes or not beeps:
        return []
    b = np.asarray(beeps)
    f = np.asarray(flashes)
    pairs = []
    for flash in flashes:
        distance = np.abs(b - flash)
        j = int(np.argmin(distance))
        beep = float(b[j])
        if abs(flash - beep) > max_offset_s:
            continue
        if len(b) > 1 and np.partition(distance, 1)[1] - distance[j] < AMBIGUOUS_MARGIN_S:
            if ambiguous is not None:
                ambiguous.append(flash)
            continue
        if float(f[np.argmin(np.abs(f - beep))]) != flash:
            continue
        lo, hi = min(flash, beep), max(flash, beep)
        if any(lo <= x <= hi for x in barriers):
            continue
        pairs.append(PairedEvent(flash, beep))
    return pairs


@dataclass(frozen=True)
class PatternResult:
    events: list[PairedEvent]
    inliers: list[bool]
    flashes: int
    beeps: int
    period_s: float | None
    offset_s: float | None  # mean over inlier events
    drift: float | None  # seconds of offset per second of media; None under 3 events
    line_intercept: float | None
    # flashes with a beep half a period away on both sides: the sign cannot be told
    ambiguous: int = 0
    unsure: int = 0  # beeps not measured: heard first right after lost audio

    @property
    def found(self) -> bool:
        # one pair is a measurement too (a short or cut file); a false one needs a pure
        # tone burst and a luma step within half a period of each other
        return len(self.events) >= 1


class PatternAnalyser:
    """Consumes Windows (video features = mean luma) and measures a flash/beep signal."""

    def __init__(self, audio_rate: int, tone_hz: float = DEFAULT_TONE_HZ) -> None:
        self.flash = FlashDetector()
        self.beep = BeepDetector(audio_rate, tone_hz)
        self.flashes: list[float] = []
        self.beeps: list[float] = []
        self.barriers: list[float] = []
        self.unsure = 0  # beeps not measured: they may have begun in a hole in the audio
        self._hole_ends: list[float] = []
        self._first_t: float | None = None
        self._seen_s = 0.0

    def still_possible(self, probe_s: float) -> bool:
        """False once probe_s of media went by without a single beep: not a test signal."""
        return bool(self.beeps) or self._seen_s < probe_s

    def reset_at(self, t: float) -> None:
        """A timestamp jump at t: detectors restart and no pair spans it."""
        self.flash.reset()
        self.beep.reset()
        self.barriers.append(t)

    def feed(self, window: Window) -> None:
        if self._first_t is None:
            self._first_t = window.t0
        self._seen_s = window.t1 - self._first_t
        for t, feature in zip(window.video_times, window.video_features, strict=True):
            onset = self.flash(float(t), float(feature[0]))
            if onset is not None:
                self.flashes.append(onset)
        newest = self._hole_ends[-1] if self._hole_ends else -math.inf
        self._hole_ends += [h for h in window.audio_hole_ends if h > newest]  # windows overlap
        for beep in self.beep(window.audio, window.audio_t0):
            if self._after_a_hole(beep):
                self.unsure += 1
            else:
                self.beeps.append(beep)

    def _after_a_hole(self, beep: float) -> bool:
        # hole ends are in time order: a file with heavy loss has one per lost packet
        i = bisect_left(self._hole_ends, beep - HOLE_GUARD_S[1])
        return i < len(self._hole_ends) and self._hole_ends[i] <= beep - HOLE_GUARD_S[0]

    def forget_before(self, t: float) -> None:
        """Drop onsets older than t (live use: memory stays bounded)."""
        self.flashes = [f for f in self.flashes if f >= t]
        self.beeps = [b for b in self.beeps if b >= t]
        self.barriers = [b for b in self.barriers if b >= t]
        self._hole_ends = [h for h in self._hole_ends if h >= t]

    def result(self) -> PatternResult:
        period = float(np.median(np.diff(self.flashes))) if len(self.flashes) >= 2 else None
        # pairing is unambiguous up to half the period; without a period, up to 1.5 s
        max_offset = period / 2 if period else 1.5
        ambiguous: list[float] = []
        events = pair_events(self.flashes, self.beeps, max_offset, self.barriers, ambiguous)
        if len(ambiguous) >= len(events):  # mostly undecidable: no answer beats a coin toss
            return PatternResult([], [], len(self.flashes), len(self.beeps), period,
                                 None, None, None, ambiguous=len(ambiguous),
                                 unsure=self.unsure)
        x = np.array([e.flash_t for e in events])
        y = np.array([e.offset_s for e in events])
        fit = theil_sen(x, y)
        mean = float(y[fit.inliers].mean())
        return PatternResult(events, fit.inliers.tolist(), len(self.flashes), len(self.beeps),
                             period, mean, fit.slope if len(events) >= 3 else None,
                             fit.intercept, ambiguous=len(ambiguous), unsure=self.unsure)


def unseen_part(window: Window, fed_until: float | None) -> Window:
    """The part of an overlapping window that streaming detectors have not seen yet:
    video from fed_until (or the window's start), audio from there to the window's end
    (without the margins kept for shifted audio), and the mean luma of combined records
    (avsync.features.combined) as the (n, 1) feature the flash detector reads."""
    start = window.t0 if fed_until is None else max(window.t0, fed_until)
    keep = window.video_times >= start
    first = max(0, int(round((start - window.audio_t0) * window.audio_rate)))
    last = max(first, int(round((window.t1 - window.audio_t0) * window.audio_rate)))
    return replace(window, t0=start, video_times=window.video_times[keep],
                   video_features=window.video_features["luma"][keep][:, None],
                   audio=window.audio[first:last],
                   audio_t0=window.audio_t0 + first / window.audio_rate)
