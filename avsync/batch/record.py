"""One batch result: the schema-1 report of a file, or the error it gave, plus what
identifies the input (path, size, mtime) and the exit code it would have alone.

check_one runs in worker processes and in Ray tasks: it never raises for the input's
sake, so one bad file can only ever become its own error record.
"""

from __future__ import annotations

import time

from avsync import __version__
from avsync.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, AvsyncError
from avsync.media.redact import redact_text
from avsync.report import SCHEMA

ERROR, INTERNAL, TIMEOUT = "bad_input", "internal_error", "timeout"


def input_fields(inp) -> dict:
    return {"input": {"path": inp.shown, "id": inp.id, "size": inp.size, "mtime": inp.mtime,
                      "inode": inp.inode}}


def error_record(inp, message: str, exit_code: int = EXIT_BAD_INPUT,
                 verdict: str = ERROR, seconds: float = 0.0) -> dict:
    """A record in the report's shape for an input that gave no report."""
    return {"schema": SCHEMA, "avsync_version": __version__, "file": inp.shown,
            "offset_ms": None, "offset_frames": None, "confidence": 0.0, "method": None,
            "verdict": verdict, "reason": redact_text(message), "exit_code": exit_code,
            "seconds": round(seconds, 3), "duration_s": None, **input_fields(inp)}


def check_one(inp, config) -> dict:
    """The record of one input; exit_code is what `avsync check` alone would return."""
    from avsync.check import check_file
    from avsync.media.urls import check_input

    started = time.perf_counter()
    if "\x00" in inp.path:
        return error_record(inp, f"{inp.shown}: a path cannot hold a NUL byte")
    try:
        check_input(inp.target)  # the single-file path's refusals, as this input's record
        report = check_file(inp.target, config)
    except AvsyncError as err:
        return error_record(inp, str(err), err.exit_code,
                            seconds=time.perf_counter() - started)
    except Exception as err:  # a bug of ours: recorded, the batch goes on
        return error_record(inp, f"internal error: {type(err).__name__}: {err}",
                            EXIT_INTERNAL, INTERNAL, time.perf_counter() - started)
    record = report.to_json()
    record["file"] = inp.shown  # printable whatever the name's encoding
    record["exit_code"] = report.exit_code
    record["seconds"] = round(time.perf_counter() - started, 3)
    record.update(input_fields(inp))
    return record
