"""The monitor's main loop: start the streams and the metrics server, draw, stop cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from avsync.errors import UsageError
from avsync.monitor.config import StreamSpec
from avsync.monitor.metrics import MetricsServer, make_registry
from avsync.monitor.stream import STOPPED, Backoff, StreamWorker
from avsync.monitor.view import EstimateLogger, TableView

log = logging.getLogger("avsync.monitor")
# of it, how long stop() waits for the stream threads to end; one blocked inside FFmpeg
# (a server that accepted and went silent) ends only at its read timeout, and the
# process leaves without it (avsync.cli.run)
JOIN_WITHIN_S = 0.8


@dataclass
class MonitorOptions:
    listen: tuple[str, int] = ("127.0.0.1", 9108)
    table: bool = True  # the live table; else log lines
    timeout_s: float = 5.0  # open and read timeouts per stream
    exit_when_done: bool = True  # when every stream is a file read to its end
    retry_max_s: float = 30.0  # longest wait between reconnection attempts
    drift_min_span_s: float = 60.0  # media a drift figure needs behind it


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--listen {text}: use HOST:PORT, e.g. 127.0.0.1:9108")
    return host.strip("[]") or "127.0.0.1", int(port)


class Monitor:
    def __init__(self, specs: list[StreamSpec], options: MonitorOptions) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise UsageError(f"stream names must differ: {', '.join(names)}")
        self.options = options
        self.stop_event = threading.Event()
        self.workers: list[StreamWorker] = []
        self.registry, self.analysis_seconds = make_registry(lambda: list(self.workers))
        # window scoring (the sync model) runs on workers shared by all streams, one per
        # core; the per-frame face front end runs in each stream's producer thread
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                       thread_name_prefix="avsync-analysis")
        self.workers = [StreamWorker(s, self.stop_event, options.timeout_s,
                                     Backoff(max_s=options.retry_max_s),
                                     on_analysis=self._observe, pool=self.pool) for s in specs]
        for w in self.workers:
            w.tracker.min_drift_span_s = options.drift_min_span_s
        try:
            self.server = MetricsServer(self.registry, *options.listen)
        except OSError as err:
            raise UsageError(f"--listen {options.listen[0]}:{options.listen[1]}: "
                             f"{err.strerror or err}") from None

    def _observe(self, stream: str, seconds: float) -> None:
        self.analysis_seconds.labels(stream=stream).observe(seconds)

    def start(self) -> Monitor:
        self.server.start()
        host, port = self.server.address
        log.info("metrics on http://%s:%d/metrics", host, port)
        for w in self.workers:
            w.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for w in self.workers:
            w.interrupt()
        deadline = time.monotonic() + JOIN_WITHIN_S
        self.server.stop()  # up to its poll interval (0.5 s), while the streams wind down
        for w in self.workers:  # daemon threads: one stuck in a read cannot hold us
            w.join(max(0.0, deadline - time.monotonic()))
        self.pool.shutdown(wait=False, cancel_futures=True)

    def supervise(self) -> None:
        """Restart any stream thread that died of a bug: one stream lost silently is
        worse than a stream counted as restarted (avsync_stream_errors_total)."""
        now = time.monotonic()
        for w in self.workers:
            if w.died and w.restart_due(now):
                w.restart(w.last_crash or "an unknown error")

    def run(self) -> int:
        """Until SIGINT/SIGTERM (or every stream is a file read to its end)."""
        view = TableView() if self.options.table and sys.stdout.isatty() else EstimateLogger()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                self.supervise()
                view.draw(self.workers)
                done = self.workers and all(w.state == STOPPED for w in self.workers)
                if self.options.exit_when_done and done:
                    break
        finally:
            self.stop()
            if isinstance(view, TableView):
                view.close()
        return 0
