"""Bounded, time-indexed rings: video features and mono audio on one media clock.

Memory is fixed at construction, whatever the input length. When a ring is full the
producer never waits for analysis on a live source: the oldest data is overwritten
and counted. A file can afford to wait (nothing is lost by reading it later), so a
ring made with ``lossless=True`` makes the producer wait instead - unless the
consumer is itself waiting for data the full ring blocks (the two streams are
interleaved further apart than the ring holds): then waiting would deadlock, and the
ring drops.
"""

from __future__ import annotations

import math
import mmap
import threading
import weakref
from collections import deque
from collections.abc import Callable

import numpy as np

from avsync.records import Window

# Audio blocks whose start is this close to where the previous block ended are taken
# as contiguous (PTS rounding); larger holes are filled with silence and counted.
CONTIGUOUS_TOLERANCE_SAMPLES = 2
HOLES_KEPT = 256  # hole ends remembered per audio ring


def _zeros(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A zeroed array on an anonymous mapping of its own: a page costs memory once it is
    written, and every page goes back to the system when the ring is dropped.

    From np.zeros a ring of face records (15-33 MB) lands under glibc's 32 MiB mmap
    ceiling: once one is freed the threshold rises past it, later rings come from the
    heap, and the heap need not give them back when a connection ends.
    """
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    if count * dtype.itemsize < mmap.PAGESIZE:
        return np.zeros(shape, dtype)
    buffer = mmap.mmap(-1, count * dtype.itemsize)  # anonymous: zero-filled on demand
    return np.frombuffer(buffer, dtype, count).reshape(shape)


class _Flow:
    """The lock and the two conditions shared by both rings of one source."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.space = threading.Condition(self.lock)  # consumer released data
        self.data = threading.Condition(self.lock)  # producer added data or ended
        self.consumer_wants: float | None = None  # media time the consumer waits for
        self._complete_until: Callable[[], Callable[[], float] | None] = lambda: None
        self.closed = False

    def watch(self, complete_until: Callable[[], float]) -> None:
        """The AVRings method saying how far both streams have arrived, held weakly: a
        strong reference would close a cycle (rings -> flow -> rings) that only the
        cyclic garbage collector frees, which may run long after a connection ends;
        until then its rings (15-35 MB) stayed: a monitor whose streams reconnect grew
        ~1.2 GB an hour (tools/soak.py)."""
        self._complete_until = weakref.WeakMethod(complete_until)

    def complete_until(self) -> float:
        method = self._complete_until()
        return method() if method is not None else math.inf

    def must_wait_for_space(self, lossless: bool) -> bool:
        """Whether a producer facing a full ring should wait (call with the lock held)."""
        if not lossless or self.closed:
            return False
        starved = self.consumer_wants is not None and self.complete_until() < self.consumer_wants
        return not starved


class VideoRing:
    """Fixed-capacity ring of (time, feature array) items, in time order."""

    def __init__(
        self, capacity: int, feature_shape: tuple[int, ...], dtype: np.dtype | type, flow: _Flow
    ) -> None:
        if capacity < 2:
            raise ValueError(f"video ring capacity {capacity} is too small; use at least 2")
        self._flow = flow
        self.capacity = capacity
        self._times = np.zeros(capacity, np.float64)
        self._features = _zeros((capacity, *feature_shape), dtype)
        self._count = 0  # items ever pushed
        self._start = 0  # index (in pushed items) of the oldest item still held
        self.dropped = 0
        self.first_time: float | None = None  # presentation time of the first item ever
        self.end_time = -math.inf  # presentation time of the newest item

    @property
    def nbytes(self) -> int:
        return self._times.nbytes + self._features.nbytes

    def __len__(self) -> int:
        return self._count - self._start

    def _push_locked(self, t: float, feature: np.ndarray, lossless: bool) -> None:
        flow = self._flow
        while len(self) >= self.capacity and flow.must_wait_for_space(lossless):
            flow.data.notify_all()
            flow.space.wait(0.5)
        if flow.closed and lossless:
            return
        if t <= self.end_time:  # out of order (should not happen after decode): skip
            return
        if len(self) >= self.capacity:
            self._start += 1
            self.dropped += 1
        slot = self._count % self.capacity
        self._times[slot] = t
        self._features[slot] = feature
        self._count += 1
        self.end_time = t
        if self.first_time is None:
            self.first_time = t

    def _slice_locked(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(self._start, self._count) % self.capacity
        times = self._times[idx]
        keep = (times >= t0) & (times < t1)
        return times[keep].copy(), self._features[idx[keep]].copy()

    def _times_locked(self) -> np.ndarray:
        return self._times[np.arange(self._start, self._count) % self.capacity]

    def _release_locked(self, t: float) -> None:
        while self._start < self._count and self._times[self._start % self.capacity] < t:
            self._start += 1


class AudioRing:
    """Fixed-capacity ring of mono float32 samples on a regular time grid.

    Sample k (counted from the first ever pushed) sits at ``origin + k / rate``; blocks
    are placed by their time, so holes become silence and overlaps are trimmed.
    """

    def __init__(self, capacity_samples: int, rate: int, flow: _Flow) -> None:
        if capacity_samples < rate // 10:
            raise ValueError(
                f"audio ring of {capacity_samples} samples holds under 0.1 s at {rate} Hz"
            )
        self._flow = flow
        self.rate = rate
        self.capacity = capacity_samples
        self._buf = _zeros((capacity_samples,), np.float32)
        self.origin: float | None = None
        self._count = 0
        self._start = 0
        self.dropped = 0  # samples overwritten before they were released
        self.gap_samples = 0  # silence inserted for holes in the timestamps
        # where each recent hole's silence ends (a few per second at worst: bounded)
        self.hole_ends: deque[float] = deque(maxlen=HOLES_KEPT)

    @property
    def nbytes(self) -> int:
        return self._buf.nbytes

    @property
    def end_time(self) -> float:
        if self.origin is None:
            return -math.inf
        return self.origin + self._count / self.rate

    def _index_of(self, t: float) -> int:
        assert self.origin is not None
        return round((t - self.origin) * self.rate)

    def _push_locked(self, t: float, samples: np.ndarray, lossless: bool, max_gap_s: float) -> None:
        if self.origin is None:
            self.origin = t
        at = self._index_of(t)
        hole = at - self._count
        if hole > CONTIGUOUS_TOLERANCE_SAMPLES:
            if hole > max_gap_s * self.rate:
                # a hole this long is not worth filling: restart the grid at t
                self.origin = t - self._count / self.rate
            else:
                self.gap_samples += hole
                self._write_locked(np.zeros(hole, np.float32), lossless)
                self.hole_ends.append(self.origin + self._count / self.rate)
        elif hole < -CONTIGUOUS_TOLERANCE_SAMPLES:
            samples = samples[-hole:]  # overlap with what we hold: keep the old samples
        self._write_locked(samples, lossless)

    def _write_locked(self, samples: np.ndarray, lossless: bool) -> None:
        flow = self._flow
        pos = 0
        while pos < len(samples):
            free = self.capacity - (self._count - self._start)
            if free <= 0:
                if flow.must_wait_for_space(lossless):
                    flow.data.notify_all()
                    flow.space.wait(0.5)
                    continue
                n_drop = min(len(samples) - pos, self.capacity)
                self._start += n_drop
                self.dropped += n_drop
                free = n_drop
            n = min(free, len(samples) - pos)
            slot = self._count % self.capacity
            first = min(n, self.capacity - slot)
            self._buf[slot : slot + first] = samples[pos : pos + first]
            self._buf[: n - first] = samples[pos + first : pos + n]
            self._count += n
            pos += n

    def _slice_locked(self, t0: float, t1: float) -> tuple[np.ndarray, float]:
        if self.origin is None:
            return np.zeros(0, np.float32), t0
        i0 = max(math.ceil((t0 - self.origin) * self.rate - 1e-9), self._start)
        i1 = min(math.ceil((t1 - self.origin) * self.rate - 1e-9), self._count)
        if i1 <= i0:
            return np.zeros(0, np.float32), self.origin + i0 / self.rate
        idx = np.arange(i0, i1) % self.capacity
        return self._buf[idx], self.origin + i0 / self.rate

    def _hole_ends_locked(self, t0: float, t1: float) -> tuple[float, ...]:
        return tuple(t for t in self.hole_ends if t0 <= t <= t1)

    def _release_locked(self, t: float) -> None:
        if self.origin is not None:
            self._start = min(max(self._start, self._index_of(t)), self._count)


class AVRings:
    """The video and audio rings of one source, and the handshake between its threads.

    The producer calls push_video / push_audio / close; the consumer calls
    wait_until(t), window(t0, t1) and release(t).
    """

    def __init__(
        self,
        seconds: float,
        audio_rate: int,
        feature_shape: tuple[int, ...],
        feature_dtype: np.dtype | type = np.float32,
        max_fps: float = 120.0,
        lossless: bool = False,
        max_gap_s: float = 2.0,
    ) -> None:
        if seconds <= 0:
            raise ValueError("ring length must be positive seconds")
        self._flow = _Flow()
        self._flow.watch(self._complete_until_locked)
        self.lossless = lossless
        self.max_gap_s = max_gap_s
        self.video = VideoRing(max(2, math.ceil(seconds * max_fps)), feature_shape,
                               feature_dtype, self._flow)
        self.audio = AudioRing(math.ceil(seconds * audio_rate), audio_rate, self._flow)
        self.discontinuities: list[float] = []  # media times where the clock jumped
        self._video_ended = False
        self._audio_ended = False

    @property
    def nbytes(self) -> int:
        return self.video.nbytes + self.audio.nbytes

    # -- producer side -------------------------------------------------------------
    def push_video(self, t: float, feature: np.ndarray) -> None:
        with self._flow.lock:
            self.video._push_locked(t, feature, self.lossless)
            self._wake_consumer_locked()

    def push_audio(self, t: float, samples: np.ndarray) -> None:
        with self._flow.lock:
            self.audio._push_locked(t, samples, self.lossless, self.max_gap_s)
            self._wake_consumer_locked()

    def _wake_consumer_locked(self) -> None:
        # only when what it waits for is there: a wake-up per item costs more than
        # the analysis of the item (thread switches under the GIL)
        wants = self._flow.consumer_wants
        if wants is not None and self._complete_until_locked() >= wants:
            self._flow.data.notify_all()

    def mark_discontinuity(self, t: float) -> None:
        with self._flow.lock:
            self.discontinuities.append(t)

    def close(self) -> None:
        """No more data will come (end of input, or the producer stopped)."""
        with self._flow.lock:
            self._flow.closed = True
            self._video_ended = self._audio_ended = True
            self._flow.data.notify_all()
            self._flow.space.notify_all()

    # -- consumer side -------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._flow.closed

    def complete_until(self) -> float:
        """Media time up to which both streams have delivered everything."""
        with self._flow.lock:
            return self._complete_until_locked()

    def _complete_until_locked(self) -> float:
        if self._flow.closed:
            return math.inf
        return min(self.video.end_time, self.audio.end_time)

    def wait_until(self, t: float, timeout: float | None = None) -> bool:
        """Block until both streams reached media time t or ended; False on timeout."""
        with self._flow.lock:
            self._flow.consumer_wants = t
            self._flow.space.notify_all()  # a producer stuck on a full ring re-decides
            try:
                return self._flow.data.wait_for(
                    lambda: self._complete_until_locked() >= t, timeout
                )
            finally:
                self._flow.consumer_wants = None

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block until both streams delivered something (or the input ended)."""
        with self._flow.lock:
            self._flow.consumer_wants = -1e300  # any data from both streams
            self._flow.space.notify_all()
            try:
                return self._flow.data.wait_for(
                    lambda: self._flow.closed or math.isfinite(self._complete_until_locked()),
                    timeout,
                )
            finally:
                self._flow.consumer_wants = None

    def window(self, t0: float, t1: float, audio_margin_s: float = 0.0) -> Window:
        """Copies of the video items presented in [t0, t1), and of the audio samples in
        [t0 - audio_margin_s, t1 + audio_margin_s) (for scorers that shift the audio)."""
        if t1 <= t0:
            raise ValueError(f"empty window [{t0}, {t1})")
        with self._flow.lock:
            vt, vf = self.video._slice_locked(t0, t1)
            audio, audio_t0 = self.audio._slice_locked(t0 - audio_margin_s, t1 + audio_margin_s)
            holes = self.audio._hole_ends_locked(audio_t0, audio_t0 + len(audio) / self.audio.rate)
        return Window(t0, t1, vt, vf, audio, audio_t0, self.audio.rate, holes)

    def next_data_time(self, t: float) -> float | None:
        """Media time of the first video item or audio sample at or after t, if any."""
        with self._flow.lock:
            times = self.video._times_locked()
            later = times[times >= t]
            candidates = [float(later.min())] if later.size else []
            audio = self.audio
            if audio.origin is not None and audio._count > audio._start:
                first = audio.origin + audio._start / audio.rate
                if audio.end_time > t:
                    candidates.append(max(first, t))
            return min(candidates) if candidates else None

    def release(self, t: float) -> None:
        """The consumer no longer needs data before media time t."""
        with self._flow.lock:
            self.video._release_locked(t)
            self.audio._release_locked(t)
            self._flow.space.notify_all()

    def discontinuities_in(self, t0: float, t1: float) -> list[float]:
        with self._flow.lock:
            return [t for t in self.discontinuities if t0 <= t < t1]
