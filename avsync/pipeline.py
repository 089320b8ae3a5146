"""One source: producer thread -> rings -> windows cut by media time -> an analyser."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from avsync.cpu import one_blas_thread
from avsync.media.rings import AVRings
from avsync.media.sources import ANALYSIS_RATE, Featurizer, OpenedInput, Producer
from avsync.records import SourceStats, Window

# Enough to absorb the interleaving of any sane file and a slow analysis step, small
# enough that memory does not depend on the input's length (~2 MB of audio).
RING_SECONDS = 30.0
MAX_RING_FPS = 120.0


class Analyser(Protocol):
    def feed(self, window: Window) -> None: ...
    def reset_at(self, t: float) -> None: ...


@dataclass(frozen=True)
class RunResult:
    first_t: float | None  # media time of the first item seen
    last_t: float | None  # media time the data ended at
    stats: SourceStats
    ended_early: str | None  # why the input stopped before its end, if it did
    analysed_s: float = 0.0  # media time covered by the windows fed (holes skipped)


def run_source(
    opened: OpenedInput,
    featurizer: Featurizer,
    analyser: Analyser,
    hop_s: float = 1.0,
    window_s: float | None = None,
    audio_margin_s: float = 0.0,
    lossless: bool = True,
    on_progress: Callable[[float], None] | None = None,
    keep_going: Callable[[], bool] = lambda: True,
    realtime: bool = False,
    on_producer: Callable[[Producer], None] | None = None,
    feature_thread: bool = False,
    name: str = "source",
) -> RunResult:
    """Decode `opened` on a producer thread and feed the analyser one window per hop.

    Windows end every hop_s and reach window_s back (default: hop_s, so they tile
    the stream); their audio reaches audio_margin_s further on both sides, for
    scorers that shift it. keep_going() is asked after each window. realtime paces a
    file at media speed. feature_thread featurizes frames on a thread beside the
    decoding one (media.stage): for one source on its own, not for many side by side.
    Raises the producer's error if it failed outright.
    """
    window_s = hop_s if window_s is None else window_s
    if hop_s <= 0:
        raise ValueError(f"hop {hop_s} s must be positive")
    if window_s < hop_s:
        raise ValueError(f"window {window_s} s is shorter than the hop {hop_s} s: "
                         "windows would leave gaps; lengthen the window or shorten the hop")
    one_blas_thread()  # numpy's OpenBLAS must not spin on the decoder's cores
    rings = AVRings(RING_SECONDS, ANALYSIS_RATE, featurizer.shape, featurizer.dtype,
                    max_fps=_ring_fps(opened), lossless=lossless)
    make = getattr(opened, "producer", None)  # inputs with their own reader (capture)
    producer = (make(rings, featurizer) if make else
                Producer(opened, rings, featurizer, name=name, realtime=realtime,
                         feature_thread=feature_thread)).start()
    if on_producer:
        on_producer(producer)  # live counters for monitors
    first_t = last_t = None
    analysed = 0.0
    try:
        rings.wait_started()
        first_t = _first_time(rings)
        t = first_t
        seen_jumps = 0
        while t is not None and keep_going():
            rings.wait_until(t + hop_s + audio_margin_s)
            end = _data_end(rings)
            t1 = last_window_end(t, hop_s, end, ended=not math.isfinite(rings.complete_until()))
            if t1 <= t:
                break
            ahead = rings.next_data_time(t)
            if ahead is None:
                break
            if ahead >= t1:  # nothing in this hop: skip the hole (broken or far-apart PTS)
                t = ahead
                continue
            jumps = rings.discontinuities_in(-math.inf, math.inf)
            for jump_t in jumps[seen_jumps:]:
                analyser.reset_at(jump_t)
            seen_jumps = len(jumps)
            analyser.feed(rings.window(max(first_t, t1 - window_s), t1, audio_margin_s))
            # keep what the next window still needs
            rings.release(t1 + hop_s - window_s - audio_margin_s)
            analysed += t1 - t
            t = last_t = t1
            if on_progress:
                on_progress(t)
    finally:
        producer.stop()
        producer.join()
    if producer.error is not None:
        raise producer.error
    return RunResult(first_t, last_t, producer.stats, producer.ended_early, analysed)


def last_window_end(t: float, hop_s: float, end: float, ended: bool) -> float:
    """Where the window after t ends: a hop on, or at the end of the data. Once the
    input has ended, a tail shorter than half a hop joins this window rather than
    making one more window, nearly a copy of this one, that would count the end of the
    media twice."""
    t1 = min(t + hop_s, end)
    if ended and end - t1 < hop_s / 2:
        return end
    return t1


def _ring_fps(opened: OpenedInput) -> float:
    """Frames per second the video ring makes room for: twice the declared rate (a
    declared rate can be wrong, and a variable-rate source can burst), at least 30 and
    at most 120. A face record is ~9 KB, so a 25 fps stream's ring is 15 MB, not the
    33 MB that room for 120 fps would take."""
    video = getattr(opened, "info", None) and opened.info.video
    fps = video.fps if video else None
    return min(MAX_RING_FPS, max(30.0, 2.0 * fps)) if fps else MAX_RING_FPS


def _first_time(rings: AVRings) -> float | None:
    starts = [rings.video.first_time, rings.audio.origin]
    starts = [s for s in starts if s is not None]
    return min(starts) if starts else None


def _data_end(rings: AVRings) -> float:
    """Media time up to which windows can be cut now."""
    until = rings.complete_until()
    if math.isfinite(until):
        return until
    # input ended: everything either stream holds (a video frame lasts until the next)
    return max(rings.video.end_time + 1e-6, rings.audio.end_time)
