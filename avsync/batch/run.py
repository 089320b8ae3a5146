"""`avsync check` over many inputs: expand, skip what --resume finds done, run on local
workers or a Ray cluster, write each record as it comes, summarise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from avsync.batch.inputs import Input
from avsync.batch.results import ResultSink, done_keys, forget, records_of


@dataclass(frozen=True)
class BatchOptions:
    out: Path | None = None
    csv: Path | None = None
    resume: bool = False
    jobs: int = 2
    ray_address: str | None = None
    file_timeout_s: float | None = None
    progress: bool = True  # one line on stderr, redrawn (a terminal only)
    html: Path | None = None  # the index page: a table and every file's section


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled and sys.stderr.isatty()
        self.done = 0
        self.media_s = 0.0
        self.started = time.monotonic()

    def step(self, record: dict) -> None:
        self.done += 1
        self.media_s += record.get("duration_s") or 0.0
        self.draw()

    def clear(self) -> None:
        """Before a result line is printed, so the two never run together."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def draw(self) -> None:
        if not self.enabled or not self.done:
            return
        wall = time.monotonic() - self.started
        rate = self.media_s / wall if wall > 0 else 0.0  # media s per wall s
        eta = wall / self.done * (self.total - self.done)
        sys.stderr.write(f"\r\033[K{self.done}/{self.total} files, {rate:.1f} media h per "
                         f"wall h, ETA {eta:.0f} s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")


def run_batch(inputs: list[Input], config, options: BatchOptions,
              on_record=None) -> int:
    """Check every input; the exit code is the worst input's (results.EXIT_PRECEDENCE)."""
    done: dict = {}
    if options.resume and options.out:
        done = done_keys(options.out)
    earlier = [i for i in inputs if i.key in done]
    inputs = [i for i in inputs if i.key not in done]
    if options.ray_address and inputs:
        from avsync.batch.cluster import connect

        connect(options.ray_address)  # a wrong address must not empty the old results
    if options.resume and options.out:
        # inputs checked again (changed since, or a transient failure) lose their old
        # record: each input keeps one
        forget(options.out, {i.id for i in inputs})
    sink = ResultSink(options.out, options.csv, append=options.resume)
    index = None
    if options.html:
        from avsync.html import HtmlIndex

        index = HtmlIndex(options.html)
    if earlier:  # their verdicts still count toward the exit code, and the CSV and the
        # index list every input, those done before included
        for record in records_of(options.out, {i.key for i in earlier}):
            sink.add_earlier(record)
            if index:
                index.add(record)
    progress = _Progress(len(inputs), options.progress)
    started = time.monotonic()
    try:
        if inputs and options.ray_address:
            from avsync.batch.cluster import run_ray

            records = run_ray(inputs, config, options.ray_address, options.file_timeout_s)
        elif inputs:
            from avsync.batch.local import run_local

            records = run_local(inputs, config, options.jobs, options.file_timeout_s)
        else:
            records = iter(())
        for record in records:
            sink.add(record)
            if index:
                index.add(record)
            progress.clear()
            if on_record:
                on_record(record)
            progress.step(record)
    finally:
        progress.close()
        sink.close()
    summary = sink.summary(time.monotonic() - started, len(earlier))
    if index:
        index.close(summary)
    print(summary, file=sys.stderr)
    return sink.exit_code
