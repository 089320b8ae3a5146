"""The featurizer on a thread of its own, so a file's decode and its face front end
use both cores.

In one producer thread, decoding and the face models take turns: the face mesh (run
by onnxruntime, which releases the GIL) could overlap the decoder, but the thread
that runs it is the one that would fetch the next frame. The producer hands each
decoded frame to this stage through a small bounded queue and goes on decoding; the
stage featurizes frames in order and pushes them into the rings. Bounded: a frame
holds a decoder buffer, so the queue (not the file's length) sets the memory, and a
producer that is ahead waits on the queue's condition, never spins.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import av
import numpy as np

_END = None
DEPTH = 6  # frames in flight: rides out a slow frame; 8 MB of 720p, 18 MB of 1080p (4:2:0)
_POLL_S = 0.5  # how often a blocked hand-off looks whether the other side gave up


class FeatureStage:
    """featurizer(frame) on a thread, in frame order, into push(t, record)."""

    def __init__(self, featurizer: Callable[[av.VideoFrame], np.ndarray],
                 push: Callable[[float, np.ndarray], None], stopped: threading.Event,
                 name: str = "source", depth: int = DEPTH) -> None:
        self._featurizer = featurizer
        self._push = push
        self._stopped = stopped  # the producer's stop: drop what is queued, end now
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"avsync-features-{name}",
                                        daemon=True)
        self._thread.start()

    def put(self, t: float, frame: av.VideoFrame) -> None:
        """Queue a frame (waits while the queue is full); raises the stage's error."""
        while True:
            self._raise_error()
            if self._stopped.is_set():
                return
            try:
                self._queue.put((t, frame), timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Featurize what is queued, end the thread; raises the stage's error."""
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END or self._stopped.is_set():
                    return
                t, frame = item
                self._push(t, self._featurizer(frame))
        except Exception as err:  # handed to the producer, which ends the input with it
            self.error = err
        finally:
            self._drain()

    def _drain(self) -> None:
        """Let go of queued frames (their decoder buffers) and of a blocked producer."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
