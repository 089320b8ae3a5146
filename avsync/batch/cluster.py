"""Check inputs on an existing Ray cluster: one Ray task per input.

Ray retries a task whose worker process or node dies (max_retries); an input past
--file-timeout (counted from when its task began the input: a new worker's start-up
and the queue do not count) is cancelled and gets a timeout record. Inputs must be reachable from
the workers (a shared path or a URL), and avsync installed there.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from avsync.batch.inputs import Input
from avsync.batch.record import INTERNAL, TIMEOUT, check_one, error_record
from avsync.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, UsageError

if TYPE_CHECKING:
    from avsync.check import CheckConfig

RAY_MISSING = ("--ray needs Ray, an optional extra: pip install 'avsync[ray]' "
               "(or pip install ray)")
TASK_RETRIES = 3  # a worker or node that dies: the input runs again elsewhere
WORKER_START_S = 120.0  # a new worker's process and imports, at most (then it is stuck)


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray {address}: use auto or the head's HOST:PORT "
                         "(e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise UsageError(f"--ray {address}: no Ray head answers there "
                         f"({err.strerror or err})") from None


def _check_task(inp: Input, config: CheckConfig, started: Any = None) -> dict:
    os.environ["AVSYNC_DECODE_THREADS"] = "1"  # Ray gives each task one CPU: use one
    import avsync.check  # noqa: F401  a new worker's imports are start-up, not the input's
    if started is not None:  # --file-timeout counts from here
        started.mark.remote(inp.id)
    return check_one(inp, config)


class _Started:
    """A Ray actor the tasks tell when they begin the input itself (after the worker
    process started and imported avsync), so --file-timeout leaves start-up out."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def mark(self, input_id: str) -> None:
        self.ids.append(input_id)

    def take(self) -> list[str]:
        ids, self.ids = self.ids, []
        return ids


def connect(address: str) -> None:
    """Join the cluster now (before any output file is opened), or one line why not."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address != "auto":
        _reachable(address)  # ray.init retries an address nobody answers on for minutes
    try:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True,
                 logging_level="ERROR", runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise UsageError(f"--ray {address}: no Ray cluster there ({err})") from None


def _cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 0)))


def run_ray(inputs: Iterable[Input], config, address: str,
            file_timeout_s: float | None = None, in_flight: int | None = None) -> Iterator[dict]:
    """Records as tasks finish. `address`: 'auto' or the head's host:port."""
    connect(address)
    ray = _ray()
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_check_task)
    config_ref = ray.put(config)
    marks = ray.remote(num_cpus=0)(_Started).remote() if file_timeout_s is not None else None
    began: dict[str, float] = {}  # input id -> when the driver learnt its task began
    pending = list(inputs)
    pending.reverse()
    running: dict = {}  # ObjectRef -> (input, submitted at)
    limit, looked = 1, -float("inf")
    try:
        while pending or running:
            if time.monotonic() - looked > 5.0:  # workers join and leave (autoscaling)
                cpus, looked = _cpus(ray), time.monotonic()
                # two tasks per CPU keep every worker busy (a queued task's
                # --file-timeout clock has not started)
                limit = in_flight or 2 * cpus
            while pending and len(running) < limit:
                inp = pending.pop()
                running[task.remote(inp, config_ref, marks)] = (inp, time.monotonic())
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                inp, submitted = running.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as err:  # retries used up, or cancelled
                    first = str(err).strip().splitlines()[0] if str(err) else ""
                    yield error_record(inp, f"Ray task failed: {type(err).__name__}: "
                                       f"{first}", EXIT_INTERNAL, INTERNAL,
                                       time.monotonic() - submitted)
            if marks is not None:
                now = time.monotonic()
                for input_id in ray.get(marks.take.remote()):
                    began[input_id] = now  # a retried task starts its clock again
                for ref, (inp, submitted) in list(running.items()):
                    # from when the input itself began: a worker's start-up and the
                    # queue do not count; but a task that never begins (a worker that
                    # cannot start) is bounded too: one queued input ahead, start-up
                    if inp.id in began:
                        over = now - began[inp.id] > file_timeout_s
                    else:
                        over = now - submitted > 2 * file_timeout_s + WORKER_START_S
                    if over:
                        ray.cancel(ref, force=True)
                        running.pop(ref)
                        yield error_record(inp, f"no answer within --file-timeout "
                                           f"{file_timeout_s:g} s (cancelled)",
                                           EXIT_BAD_INPUT, TIMEOUT, now - submitted)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if marks is not None:
            ray.kill(marks)
        ray.shutdown()
