"""Check inputs on worker processes of this machine, one input per worker at a time.

Each worker is a process of its own (a crash or a hang takes only its input down) with
its numeric libraries and FFmpeg's decoder held to one thread, so N workers keep N
cores busy without fighting over them. A
worker past --file-timeout is killed and replaced; its input gets a timeout record.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait

from avsync.batch.inputs import Input
from avsync.batch.record import INTERNAL, TIMEOUT, check_one, error_record
from avsync.errors import EXIT_BAD_INPUT, EXIT_INTERNAL

READY = "ready"
START_TIMEOUT_S = 120.0  # a worker that has not finished its imports by then is stuck
# set in every worker before numpy, onnxruntime or FFmpeg start: one thread each
# (AVSYNC_DECODE_THREADS: FFmpeg's decoder threads, read by media.sources)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1", "AVSYNC_DECODE_THREADS": "1"}


def _worker(conn: Connection, config) -> None:
    # Ctrl-C reaches the whole process group: the parent stops us, we print nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    import avsync.check  # noqa: F401  (imported before the clock of a first input starts)

    conn.send(READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the batch is gone: so are we
            return
        if task is None:
            return
        try:
            conn.send(check_one(task, config))
        except (BrokenPipeError, OSError):
            return


def _die_with_parent() -> None:
    """Linux: a SIGKILLed or SIGTERMed batch takes its workers with it (a worker on a
    hung input would otherwise outlive it)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's clean-up has to do
        pass


class _Slot:
    def __init__(self, ctx, config) -> None:
        self.ctx, self.config = ctx, config
        self.task: Input | None = None
        self.started = 0.0
        self.ready = False  # imports done: --file-timeout counts from here
        self.failed_starts = 0  # in a row: three and the batch cannot go on
        self.spawned = time.monotonic()
        self._spawn()

    def _spawn(self) -> None:
        parent, child = self.ctx.Pipe()
        saved = {k: os.environ.get(k) for k in ONE_THREAD}
        os.environ.update(ONE_THREAD)  # the child copies the environment at start
        try:
            self.proc = self.ctx.Process(target=_worker, args=(child, self.config),
                                         daemon=True, name="avsync-batch-worker")
            self.proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.conn = parent

    def give(self, task: Input) -> bool:
        """Hand the worker an input; False if it died while idle (OOM killer...)."""
        try:
            self.conn.send(task)
        except OSError:
            self.replace()
            return False
        self.task, self.started = task, time.monotonic()
        return True

    def replace(self) -> None:
        """Kill this worker (hung or dead) and start a fresh one."""
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()
        self.task, self.ready = None, False
        self.spawned = time.monotonic()
        self._spawn()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def run_local(inputs: Iterable[Input], config, jobs: int,
              file_timeout_s: float | None = None) -> Iterator[dict]:
    """Records as inputs finish (in finishing order)."""
    ctx = mp.get_context("spawn")  # no fork of a threaded parent
    pending = list(inputs)
    pending.reverse()  # pop() from the end keeps the given order
    slots = [_Slot(ctx, config) for _ in range(max(1, min(jobs, len(pending))))]
    try:
        while pending or any(s.task for s in slots):
            for slot in slots:
                if slot.ready and slot.task is None and pending:
                    task = pending.pop()
                    if not slot.give(task):
                        pending.append(task)  # to the next worker that is ready
            busy = [s for s in slots if s.task is not None or not s.ready]
            ready = wait([s.conn for s in busy], timeout=0.25)
            for slot in busy:
                if not slot.ready:
                    started_ok = False
                    if slot.conn in ready:
                        with contextlib.suppress(EOFError, OSError):
                            started_ok = slot.conn.recv() == READY
                    elif time.monotonic() - slot.spawned < START_TIMEOUT_S:
                        continue
                    if started_ok:
                        slot.ready, slot.failed_starts = True, 0
                        continue
                    slot.failed_starts += 1  # died or hung while starting: try again
                    if slot.failed_starts >= 3:
                        raise RuntimeError("batch worker processes fail as they start "
                                           f"(exit code {slot.proc.exitcode}); is avsync "
                                           "installed correctly?")
                    slot.replace()
                    continue
                if slot.conn in ready:
                    try:
                        record = slot.conn.recv()
                    except (EOFError, OSError):  # the worker died under this input
                        record = error_record(slot.task, "the worker checking this input "
                                              f"died (exit code {slot.proc.exitcode})",
                                              EXIT_INTERNAL, INTERNAL,
                                              time.monotonic() - slot.started)
                        slot.replace()
                        yield record
                        continue
                    slot.task = None
                    yield record
                elif (file_timeout_s is not None
                      and time.monotonic() - slot.started > file_timeout_s):
                    record = error_record(slot.task, f"no answer within --file-timeout "
                                          f"{file_timeout_s:g} s (killed)", EXIT_BAD_INPUT,
                                          TIMEOUT, file_timeout_s)
                    slot.replace()
                    yield record
    finally:
        for slot in slots:
            slot.stop()
