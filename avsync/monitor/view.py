"""What a person watching the monitor sees: a live table, or log lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

from avsync.monitor.stream import UP, StreamWorker
from avsync.report import describe_offset


def table(workers: Iterable[StreamWorker]) -> str:
    rows = [("STREAM", "STATE", "OFFSET", "CONF", "DRIFT", "VERDICT")]
    for w in workers:
        est = w.tracker.current() if w.state == UP else None
        if est is None:
            offset = conf = drift = "-"
            verdict = w.error or ("measuring" if w.state == UP else w.state)
        else:
            offset = f"{est.offset_ms:+.0f} ms"
            conf = f"{est.confidence:.2f}"
            drift = "-" if est.drift_ms_per_min is None else f"{est.drift_ms_per_min:+.1f}/min"
            verdict = ("ok " if est.in_tolerance else "OUT ") + describe_offset(est.offset_ms)
        rows.append((w.spec.name, w.state, offset, conf, drift, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:5])) + "  " + r[5]
                     for r in rows)


class TableView:
    """Redraws the table in place on a terminal, once a second."""

    def __init__(self, stream=sys.stdout) -> None:
        self.stream = stream

    def draw(self, workers: Iterable[StreamWorker]) -> None:
        self.stream.write("\x1b[H\x1b[J" + time.strftime("avsync monitor  %H:%M:%S\n\n")
                          + table(workers) + "\n")
        self.stream.flush()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                           "level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage(),
                           **getattr(record, "fields", {})})


class EstimateLogger:
    """Without the table: a line per stream every `every_s` with its current estimate."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last = 0.0
        self.log = logging.getLogger("avsync.monitor")

    def draw(self, workers: Iterable[StreamWorker]) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        for w in workers:
            est = w.tracker.current() if w.state == UP else None
            fields = {"stream": w.spec.name, "state": w.state}
            if est is not None:
                fields.update(offset_ms=round(est.offset_ms, 1),
                              confidence=round(est.confidence, 2),
                              drift_ms_per_min=None if est.drift_ms_per_min is None
                              else round(est.drift_ms_per_min, 2),
                              in_tolerance=est.in_tolerance, method=est.method)
                text = (f"{w.spec.name}: {describe_offset(est.offset_ms)}, confidence "
                        f"{est.confidence:.2f}")
            else:
                text = f"{w.spec.name}: {w.state}" + (f" ({w.error})" if w.error else "")
            self.log.info(text, extra={"fields": fields})
