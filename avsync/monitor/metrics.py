"""Prometheus metrics of every monitored stream, and the HTTP server that serves them.

Names follow Prometheus conventions: base units (seconds, ratios), `_total` for
counters, one `stream` label holding the name the user gave (never the URL).
`/metrics` answers GET and HEAD; `/healthz` answers "ok" while the monitor runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from avsync.estimate.offset import FLAT, MEASURED, NO_FACE, NO_SPEECH
from avsync.monitor.stream import ERROR_REASONS, UP, StreamWorker

OUTCOMES = {MEASURED: "measured", NO_FACE: "no_face", NO_SPEECH: "no_speech",
            FLAT: "low_confidence"}
# analysis time per window: ~1 ms (test signal) to a few hundred (many faces, slow CPU)
ANALYSIS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class StreamCollector:
    """Reads the workers' state at scrape time: no per-update bookkeeping."""

    def __init__(self, workers: Callable[[], Iterable[StreamWorker]]) -> None:
        self.workers = workers

    def collect(self):
        g = {name: GaugeMetricFamily(f"avsync_{name}", doc, labels=["stream"])
             for name, doc in [
                 ("av_offset_seconds", "Audio/video offset; > 0: audio leads the picture"),
                 ("av_offset_confidence_ratio", "Confidence of the current offset, 0..1"),
                 ("av_drift_ratio", "Offset change per second of media (x 60000 = ms/min)"),
                 ("in_tolerance", "1 when the offset is within the stream's tolerance"),
                 ("tolerance_lead_seconds", "Largest allowed audio lead of the stream"),
                 ("tolerance_lag_seconds", "Most negative allowed offset (audio late)"),
                 ("stream_up", "1 while the stream is connected and being measured"),
                 ("processing_lag_seconds",
                  "Media received but not analysed yet (with a window's look-ahead)"),
             ]}
        c = {name: CounterMetricFamily(f"avsync_{name}", doc, labels=["stream"])
             for name, doc in [
                 ("reconnects", "Reconnections after the stream failed"),
                 ("video_frames", "Video frames decoded"),
                 ("audio_samples", "Audio samples decoded (16 kHz mono)"),
                 ("decode_errors", "Corrupt or undecodable packets"),
                 ("dropped_video_frames", "Video frames dropped because analysis lagged"),
                 ("dropped_audio_samples", "Audio samples dropped because analysis lagged"),
                 ("timestamp_jumps", "Timestamp discontinuities in the stream"),
                 ("timestamp_strays", "Items out of timestamp order, dropped"),
             ]}
        windows = CounterMetricFamily("avsync_windows", "Analysis windows by outcome",
                                      labels=["stream", "outcome"])
        offset_jumps = CounterMetricFamily("avsync_offset_jumps",
                                           "Offset changes that persisted",
                                           labels=["stream"])
        errors = CounterMetricFamily("avsync_stream_errors",
                                     "Stream failures by reason (each one is retried)",
                                     labels=["stream", "reason"])
        info = GaugeMetricFamily("avsync_stream_info", "Stream description (value 1)",
                                 labels=["stream", "url", "standard", "method"])
        for w in self.workers():
            name = w.spec.name
            tol = w.spec.tolerance
            up = w.state == UP
            g["stream_up"].add_metric([name], 1.0 if up else 0.0)
            g["tolerance_lead_seconds"].add_metric([name], tol.lead_ms / 1e3)
            g["tolerance_lag_seconds"].add_metric([name], tol.lag_ms / 1e3)
            est = w.tracker.current() if up else None
            if est is not None:  # no estimate: no sample, rather than a made-up value
                g["av_offset_seconds"].add_metric([name], est.offset_ms / 1e3)
                g["av_offset_confidence_ratio"].add_metric([name], est.confidence)
                g["in_tolerance"].add_metric([name], 1.0 if est.in_tolerance else 0.0)
                if est.drift_ms_per_min is not None:
                    g["av_drift_ratio"].add_metric([name], est.drift_ms_per_min / 60_000)
            if up and w.lag_s is not None:
                g["processing_lag_seconds"].add_metric([name], w.lag_s)
            stats = w.stats()
            c["reconnects"].add_metric([name], w.reconnects)
            c["decode_errors"].add_metric([name], stats.decode_errors)
            c["video_frames"].add_metric([name], stats.video_frames)
            c["audio_samples"].add_metric([name], stats.audio_samples)
            c["dropped_video_frames"].add_metric([name], stats.video_dropped)
            c["dropped_audio_samples"].add_metric([name], stats.audio_dropped_samples)
            c["timestamp_jumps"].add_metric([name], stats.timestamp_jumps)
            c["timestamp_strays"].add_metric([name], stats.timestamp_strays)
            for status, label in OUTCOMES.items():
                windows.add_metric([name, label], w.tracker.outcomes.get(status, 0))
            offset_jumps.add_metric([name], len(w.tracker.jumps))
            for reason in ERROR_REASONS:  # every label from the start: rate() needs a zero
                errors.add_metric([name, reason], w.errors.get(reason, 0))
            method = est.method if est else ""
            info.add_metric([name, w.spec.shown, tol.name, method], 1.0)
        yield from g.values()
        yield from c.values()
        yield windows
        yield offset_jumps
        yield errors
        yield info


def make_registry(workers: Callable[[], Iterable[StreamWorker]]
                  ) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(StreamCollector(workers))
    analysis = Histogram("avsync_window_analysis_seconds", "Analysis time per window",
                         ["stream"], buckets=ANALYSIS_BUCKETS, registry=registry)
    return registry, analysis


class MetricsServer:
    """/metrics (GET, HEAD) and /healthz on a ThreadingHTTPServer thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        handler = _handler(registry)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name="avsync-metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: bytes, content_type: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(b"ok\n", "text/plain; charset=utf-8")
            else:
                self._reply(b"not found: try /metrics or /healthz\n",
                            "text/plain; charset=utf-8", 404)

        do_GET = do_HEAD = _route

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # scrapes every few seconds would flood the log

    return Handler
