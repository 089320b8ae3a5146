"""Where batch records go: a JSON-lines file written as each input finishes (flushed,
so a kill loses only the inputs in flight), an optional CSV, and the closing summary.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from avsync.errors import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_INTERNAL, EXIT_PASS, EXIT_UNMEASURED

# The batch's exit code is its worst file's; worst first. A failing file outranks an
# unmeasured one (a known problem beats an unknown one); a bad input or a crash
# outranks both (the batch did not do its job on that file).
EXIT_PRECEDENCE = (EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAIL, EXIT_UNMEASURED, EXIT_PASS)
CSV_COLUMNS = ("path", "verdict", "offset_ms", "offset_frames", "confidence", "method",
               "drift_ms_per_min", "duration_s", "reason", "exit_code", "size", "mtime")


def worst_exit(codes) -> int:
    codes = set(codes)
    return next((c for c in EXIT_PRECEDENCE if c in codes), EXIT_PASS)


# verdicts a re-run should try again rather than skip: they say nothing of the file
RETRY_ON_RESUME = ("timeout", "internal_error")
# a bad input for a reason outside the file (the worker could not reach it): tried again
_ENVIRONMENT = ("no such file", "permission denied", "refused", "unreachable",
                "timed out", "no route", "could not resolve", "name resolution")


def retry_on_resume(record: dict) -> bool:
    """Whether --resume checks this record's input again rather than keeping it."""
    if record.get("verdict") in RETRY_ON_RESUME:
        return True
    reason = str(record.get("reason") or "").lower()
    return record.get("verdict") == "bad_input" and any(w in reason for w in _ENVIRONMENT)


def record_key(record: dict) -> tuple:
    inp = record["input"]
    return (inp["id"], inp["size"], inp["mtime"], inp.get("inode"))


def _records(path: Path) -> Iterator[dict]:
    """The complete records of a --out file, one at a time."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
                record_key(record)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            yield record


def done_keys(path: Path) -> dict[tuple, int]:
    """(input id, size, mtime, file) -> exit code of every complete record in an
    earlier --out file, read line by line; records of transient failures (timeouts,
    dead workers, an input the worker could not reach) are left out, so --resume tries
    those inputs again. A last line cut short by a kill is dropped from the file, so
    appending continues cleanly."""
    if not path.exists():
        return {}
    _drop_partial_last_line(path)
    keys = {}
    for record in _records(path):
        try:
            if not retry_on_resume(record):
                keys[record_key(record)] = int(record["exit_code"])
        except (KeyError, TypeError, ValueError):
            continue
    return keys


def records_of(path: Path, keys: set) -> Iterator[dict]:
    """The records of an earlier --out file whose input is in keys, one at a time (one
    per input: an older file may hold two of one unchanged input)."""
    seen = set()
    for record in _records(path):
        key = record_key(record)
        if key in keys and key not in seen:
            seen.add(key)
            yield record


def forget(path: Path, ids: set[str]) -> None:
    """Rewrite a --out file without the records of these inputs (they are checked
    again: a changed file, a timeout), so each input keeps one record. Written aside
    and moved into place: a kill leaves the old file or the new one, never half."""
    if not path.exists() or not ids:
        return
    tmp = path.with_name(path.name + ".resume-tmp")
    with open(tmp, "w", encoding="utf-8", errors="backslashreplace") as out:
        for record in _records(path):
            if record["input"]["id"] not in ids:
                out.write(json.dumps(record) + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _drop_partial_last_line(path: Path) -> None:
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        back = min(size, 1 << 20)
        while True:  # find the last newline, reading backwards in chunks
            f.seek(size - back)
            chunk = f.read(back)
            at = chunk.rfind(b"\n")
            if at >= 0 or back == size:
                f.truncate(size - back + at + 1 if at >= 0 else 0)
                return
            back = min(size, back * 2)


class ResultSink:
    """Appends each record as it comes; keeps only what the summary needs."""

    def __init__(self, out: Path | None, csv_path: Path | None, append: bool) -> None:
        # open for the whole batch, closed by close(): not a with-block's lifetime
        self._out = (open(out, "a" if append else "w", encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace") if out else None)
        self._csv_file = None
        self._csv = None
        if csv_path:  # always whole: a resumed run lists the records done before too
            self._csv_file = open(csv_path, "w", newline="", encoding="utf-8",  # noqa: SIM115
                                  errors="backslashreplace")
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(CSV_COLUMNS)
        self.verdicts: Counter[str] = Counter()
        self.codes: Counter[int] = Counter()
        self.media_s = 0.0
        self.worst: list[tuple[float, float, str]] = []  # (|offset|, offset, path), top 5

    def add(self, record: dict) -> None:
        if self._out:
            self._out.write(json.dumps(record) + "\n")
            self._out.flush()
            os.fsync(self._out.fileno())  # on disk before the next input counts as done
        self._write_csv(record)
        self.verdicts[record["verdict"]] += 1
        self.codes[record["exit_code"]] += 1
        self.media_s += record.get("duration_s") or 0.0
        if record.get("offset_ms") is not None:
            offset = record["offset_ms"]
            self.worst.append((abs(offset), offset, record["file"]))
            self.worst = sorted(self.worst, reverse=True)[:5]

    def add_earlier(self, record: dict) -> None:
        """A record a resumed run found done: in the CSV (it lists the whole run) and
        the exit code, not written to --out again nor counted as checked now."""
        self._write_csv(record)
        self.codes[record["exit_code"]] += 1

    def _write_csv(self, record: dict) -> None:
        if self._csv:
            inp = record.get("input", {})
            row = {**record, "path": inp.get("path"), "size": inp.get("size"),
                   "mtime": inp.get("mtime")}
            self._csv.writerow([row.get(c) for c in CSV_COLUMNS])
            self._csv_file.flush()

    def close(self) -> None:
        for f in (self._out, self._csv_file):
            if f:
                f.close()

    @property
    def exit_code(self) -> int:
        return worst_exit(self.codes)

    def summary(self, wall_s: float, skipped: int = 0) -> str:
        total = sum(self.verdicts.values())
        order = ("pass", "fail", "uncertain", "unmeasured", "bad_input", "timeout",
                 "internal_error")
        counts = ", ".join(f"{self.verdicts[v]} {v.replace('_', ' ')}" for v in order
                           if self.verdicts[v])
        lines = [f"checked {total} input{'s' if total != 1 else ''}"
                 + (f" ({skipped} already done, skipped)" if skipped else "")
                 + f": {counts or 'nothing'}",
                 f"media {_span(self.media_s)} in {_span(wall_s)} wall"
                 + (f" ({self.media_s / wall_s:.0f}x real time)" if wall_s > 0 and
                    self.media_s else "")]
        if self.worst:
            lines.append("largest offsets: " + "; ".join(f"{o:+.0f} ms {p}"
                                                         for _, o, p in self.worst))
        lines.append(f"exit code {self.exit_code}")
        return "\n".join(lines)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
