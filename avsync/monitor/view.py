"""What a person watching the monitor sees: a live table, or log lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import deque
from collections.abc import Iterable

from avsync.media.redact import RedactingFilter
from avsync.monitor.stream import UP, StreamWorker
from avsync.report import describe_offset


def table(workers: Iterable[StreamWorker]) -> str:
    rows = [("STREAM", "STATE", "OFFSET", "CONF", "DRIFT", "VERDICT")]
    for w in workers:
        est = w.tracker.current() if w.state == UP else None
        if est is None:
            offset = conf = drift = "-"
            verdict = w.error or (waiting(w) if w.state == UP else w.state)
        else:
            offset = f"{est.offset_ms:+.0f} ms"
            conf = f"{est.confidence:.2f}"
            drift = "-" if est.drift_ms_per_min is None else f"{est.drift_ms_per_min:+.1f}/min"
            verdict = ("ok " if est.in_tolerance else "OUT ") + describe_offset(est.offset_ms)
        rows.append((w.spec.name, w.state, offset, conf, drift, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:5])) + "  " + r[5]
                     for r in rows)


def waiting(w: StreamWorker) -> str:
    """What an up stream without a published estimate is doing."""
    if w.tracker.settling:  # measured, but no second reading has confirmed the first yet
        return "settling"
    return "measuring"


class RecentLines(logging.Handler):
    """Keeps the last few log lines for the table to show under itself."""

    def __init__(self, keep: int = 8) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class TableView:
    """Redraws the table in place on a terminal, once a second.

    While it draws, log lines are shown under the table instead of being written to
    the same terminal, where they would tear the table apart; `close` hands logging
    back and leaves the last of them on stderr.
    """

    def __init__(self, stream=sys.stdout) -> None:
        self.stream = stream
        self.recent = RecentLines()
        root = logging.getLogger()
        self._saved = root.handlers[:]
        root.handlers[:] = [self.recent]

    def draw(self, workers: Iterable[StreamWorker]) -> None:
        events = "\n".join(self.recent.lines)
        self.stream.write("\x1b[H\x1b[J" + time.strftime("avsync monitor  %H:%M:%S\n\n")
                          + table(workers) + "\n" + (f"\n{events}\n" if events else ""))
        self.stream.flush()

    def close(self) -> None:
        logging.getLogger().handlers[:] = self._saved
        for line in self.recent.lines:
            print(line, file=sys.stderr)


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
            elif w.state == UP:
                fields["settling"] = w.tracker.settling
                text = f"{w.spec.name}: up, {waiting(w)}"
            else:  # a stream that is down says so (and why) on each failure already
                continue
            self.log.info(text, extra={"fields": fields})
