"""One monitored stream: open, measure window by window, fail, back off, reconnect.

Each stream runs on its own thread (plus its producer thread); a failure is caught,
reported (state, error, reconnect counter) and retried with exponential backoff and
jitter, so one broken stream never disturbs the others.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from avsync.errors import AvsyncError
from avsync.estimate.offset import MEASURED
from avsync.estimate.pattern import PatternAnalyser, unseen_part
from avsync.estimate.tracker import LiveTracker
from avsync.features.combined import CombinedFeaturizer
from avsync.lipsync import LipSyncAnalyser, LipSyncConfig
from avsync.media.capture import CaptureInput, is_capture
from avsync.media.memory import release_free_memory
from avsync.media.redact import scrub
from avsync.media.sources import ANALYSIS_RATE, open_input
from avsync.monitor.config import StreamSpec
from avsync.pipeline import RunResult, run_source
from avsync.records import SourceStats, Window

log = logging.getLogger("avsync.monitor")

STARTING, UP, DOWN, STOPPED = "starting", "up", "down", "stopped"
TEST_SIGNAL_HOLD_S = 10.0  # after a beep, treat the stream as a test signal this long
PATTERN_MEMORY_S = 60.0


@dataclass
class Backoff:
    """Exponential backoff with full jitter: 1, 2, 4 ... max_s seconds, times 0.5-1."""

    base_s: float = 1.0
    max_s: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        # the exponent stops growing once the cap is reached: 2.0**1024 overflows a
        # float, which after ~6 h of outage killed the stream's thread
        delay = min(self.max_s, self.base_s * 2.0 ** min(self.attempt, 62))
        self.attempt = min(self.attempt + 1, 62)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


# avsync_stream_errors_total{reason}: a few stable labels, never the free text (which
# may vary without end and must never carry a URL)
ERROR_REASONS = ("timeout", "refused", "unreachable", "not_found", "auth", "ended",
                 "no_stream", "bad_data", "other", "internal", "worker_restart")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S*")


def error_reason(text: str) -> str:
    """The label a stream failure is counted under ("internal" is kept for our bugs)."""
    lower = _URL.sub("", text).lower()  # a URL's port or query must not pick the label
    for label, needles in (
        ("timeout", ("timed out", "timeout")),
        ("refused", ("refused",)),
        ("unreachable", ("unreachable", "no route", "name or service", "resolve",
                         "network is down", "connection reset", "broken pipe")),
        ("auth", ("401", "403", "unauthorized", "forbidden")),
        ("not_found", ("404", "not found", "no such file")),
        ("no_stream", ("no video stream", "no audio stream", "no audio or video")),
        ("ended", ("stream ended", "end of file")),
        ("bad_data", ("invalid data", "corrupt", "not a readable")),
    ):
        if any(n in lower for n in needles):
            return label
    return "other"


class LiveAnalyser:
    """Feeds windows to the test-signal and the lip-sync analysers, reports each new
    measurement to the tracker, and keeps their memory bounded."""

    def __init__(self, spec: StreamSpec, fps: float, tracker: LiveTracker,
                 on_window: Callable[[float, float], None],
                 pool: Executor | None = None):
        self.tracker = tracker
        self.pool = pool  # shared by all streams: scoring never oversubscribes the cores
        self.lipsync = LipSyncAnalyser(LipSyncConfig(max_offset_s=spec.max_offset_s,
                                                     scorer=spec.scorer,
                                                     model_path=spec.model_path), fps)
        self.featurizer = CombinedFeaturizer(self.lipsync.front_end())
        self.pattern = PatternAnalyser(ANALYSIS_RATE)
        self.on_window = on_window  # (media time, analysis seconds)
        self._fed_until: float | None = None
        self._last_event_t = -np.inf
        self._last_beep_t = -np.inf

    @property
    def audio_margin_s(self) -> float:
        return self.lipsync.audio_margin_s

    def reset_at(self, t: float) -> None:
        self.pattern.reset_at(t)

    def feed(self, window: Window) -> None:
        started = time.perf_counter()
        self._feed_pattern(window)
        testing = window.t1 - self._last_beep_t < TEST_SIGNAL_HOLD_S
        self.featurizer.faces = not testing  # no face search on a test signal
        if not testing:
            score = self.lipsync.score_window
            est, _curve, _track = (self.pool.submit(score, window).result() if self.pool
                                   else score(window))
            self.tracker.add(est.t, est.status,
                             None if est.offset_s is None else est.offset_s * 1e3,
                             est.confidence, self.lipsync.method)
        self.on_window(window.t1, time.perf_counter() - started)

    def _feed_pattern(self, window: Window) -> None:
        # windows overlap: give the detectors only what they have not seen
        self.pattern.feed(unseen_part(window, self._fed_until))
        self._fed_until = window.t1
        if self.pattern.beeps:
            self._last_beep_t = max(self._last_beep_t, self.pattern.beeps[-1])
        for event in self.pattern.result().events:
            if event.flash_t > self._last_event_t:
                self._last_event_t = event.flash_t
                self.tracker.add(event.flash_t, MEASURED, event.offset_s * 1e3, 1.0,
                                 "test-signal")
        self.pattern.forget_before(window.t1 - PATTERN_MEMORY_S)


def _explain_fast_end(result: RunResult, wall_s: float) -> None:
    """A live source cannot deliver media much faster than real time; one that did and
    then ended is a recording (a VOD playlist, a file served over HTTP). Unpaced, it is
    read in a moment and reconnected over and over: say so, and what to do."""
    if result.first_t is None or result.last_t is None:
        return
    media_s = result.last_t - result.first_t
    # slack: a live HLS client starts a few segments back and takes them in one burst
    if media_s > 2.0 * wall_s + 10.0:
        raise _StreamProblem(
            f"stream ended: {media_s:.0f} s of media arrived in {wall_s:.1f} s, so this "
            "is a recording (VOD playlist?), not a live feed; add realtime to play it at "
            "media speed")


class StreamWorker:
    """A thread that keeps one stream measured for as long as the monitor runs."""

    def __init__(self, spec: StreamSpec, stop: threading.Event, timeout_s: float = 5.0,
                 backoff: Backoff | None = None,
                 on_analysis: Callable[[str, float], None] | None = None,
                 pool: Executor | None = None) -> None:
        self.spec = spec
        self.pool = pool
        self.stop_event = stop
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self.on_analysis = on_analysis  # (stream name, seconds) per window: the histogram
        self.tracker = LiveTracker(spec.tolerance)
        self.state = STARTING
        self.error: str | None = None
        self.reconnects = 0
        self.errors: Counter[str] = Counter()  # failures by error_reason()
        self.restarts = 0  # times the thread died and the monitor started a new one
        self.last_crash: str | None = None
        self._died_at: float | None = None  # when the supervisor first saw it dead
        self.lag_s: float | None = None
        self.totals = SourceStats()  # over all connections
        self._live_stats: Callable[[], SourceStats] | None = None
        self._stats_lock = threading.Lock()
        self._producer = None
        self._thread = self._new_thread()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name=f"avsync-stream-{self.spec.name}",
                                daemon=True)

    def start(self) -> StreamWorker:
        self._thread.start()
        return self

    @property
    def died(self) -> bool:
        """The thread ended though nobody asked it to: a bug, not a stream failure."""
        return (self._thread.ident is not None and not self._thread.is_alive()
                and not self.stop_event.is_set() and self.state != STOPPED)

    def restart_due(self, now: float) -> bool:
        """A thread that keeps dying is restarted ever less often (1, 2, 4 ... s, at
        most the back-off cap), not in a tight loop."""
        if self._died_at is None:
            self._died_at = now
        pause = min(self.backoff.max_s, 2.0 ** min(self.restarts, 16))
        return now - self._died_at >= pause

    def restart(self, why: str) -> None:
        """A new thread for a dead one: the stream is measured again, and the death
        counted and logged, never lost silently."""
        self.restarts += 1
        self.errors["worker_restart"] += 1
        self.state, self.error = DOWN, _redacted(f"worker restarted after {why}", self.spec)
        log.error("%s: %s", self.spec.name, self.error)
        self.last_crash, self._died_at = None, None
        self._thread = self._new_thread()
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> SourceStats:
        """Counters over every connection so far, the current one included."""
        with self._stats_lock:  # a scrape never sees a connection counted twice or not at all
            live = self._live_stats() if self._live_stats else SourceStats()
            return _add(self.totals, live)

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # no traceback on stderr: the supervisor (Monitor) sees
            self.last_crash = f"{type(err).__name__}: {err}"  # `died`, restarts and counts

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            internal = False
            try:
                self._session()
                reason = "stream ended"
            except AvsyncError as err:
                reason = str(err)
            except Exception as err:  # anything else: report, back off, retry
                reason, internal = f"{type(err).__name__}: {err}", True
            if self.stop_event.is_set():
                break
            if self.spec.is_file and not self.spec.realtime and reason == "stream ended":
                self.state, self.error = STOPPED, None  # a file read to its end: done
                log.info("%s: file read to the end", self.spec.name)
                return
            self.errors["internal" if internal else error_reason(reason)] += 1
            self.state, self.error = DOWN, _redacted(reason, self.spec)
            delay = self.backoff.next_delay()
            log.warning("%s: down (%s); retrying in %.1f s", self.spec.name, self.error, delay)
            if self.stop_event.wait(delay):
                break
            self.reconnects += 1
        self.state = STOPPED

    def _session(self) -> None:
        spec = self.spec
        if is_capture(spec.url):
            opened = CaptureInput(spec.url, self.timeout_s)
        else:
            opened = open_input(spec.url, spec.ffmpeg_options(self.timeout_s),
                                timeout_s=self.timeout_s)
        try:
            if opened.info.video is None or opened.info.audio is None:
                missing = "video" if opened.info.video is None else "audio"
                raise _StreamProblem(f"no {missing} stream")
            fps = opened.info.video.fps or 25.0
            self.tracker.reset()

            def on_window(t1: float, seconds: float) -> None:
                # processing lag: media that has arrived but is not analysed yet (the
                # window's look-ahead for shifted audio included)
                producer = self._producer
                if producer is not None:
                    rings = producer.rings
                    newest = max(rings.video.end_time, rings.audio.end_time)
                    self.lag_s = max(0.0, newest - t1)
                if self.state != UP:
                    self.state, self.error = UP, None
                    self.backoff.reset()
                    log.info("%s: up", spec.name)
                if self.on_analysis:
                    self.on_analysis(spec.name, seconds)

            analyser = LiveAnalyser(spec, fps, self.tracker, on_window, self.pool)
            live = not spec.is_file or spec.realtime
            started = time.monotonic()
            result = run_source(
                opened, analyser.featurizer, analyser, hop_s=1.0, window_s=3.0,
                audio_margin_s=analyser.audio_margin_s, lossless=not live,
                keep_going=lambda: not self.stop_event.is_set(),
                realtime=spec.realtime, on_producer=self._watch, name=spec.name)
            if result.ended_early:
                raise _StreamProblem(result.ended_early)
            if not spec.is_file and not spec.realtime and not self.stop_event.is_set():
                _explain_fast_end(result, time.monotonic() - started)
        finally:
            # this connection's counters join the totals however it ended: the exported
            # counters never go down
            with self._stats_lock:
                if self._live_stats is not None:
                    self.totals = _add(self.totals, self._live_stats())
                self._live_stats = None
            self._producer = None  # its rings go now, not when the next connection starts
            opened.container.close()
            release_free_memory()  # what this connection's threads freed (memory.py)

    def interrupt(self) -> None:
        """Stop now: wake a consumer waiting for data (the shared stop event is set by
        the monitor)."""
        producer = self._producer
        if producer is not None:
            producer.stop()

    def _watch(self, producer) -> None:
        self._producer = producer
        with self._stats_lock:
            self._live_stats = lambda: producer.stats


class _StreamProblem(AvsyncError):
    pass


def _redacted(reason: str, spec: StreamSpec) -> str:
    """Error text with the URL's secrets out, whatever FFmpeg put in it."""
    return scrub(reason, spec.url)


def _add(a: SourceStats, b: SourceStats) -> SourceStats:
    return SourceStats(**{k: getattr(a, k) + getattr(b, k)
                          for k in SourceStats.__dataclass_fields__})
