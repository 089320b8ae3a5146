"""How avsync shares the machine's cores: one OpenBLAS thread.

numpy's OpenBLAS keeps its worker threads spinning for a while after each call, and
the audio features' small matrix products (log-mel) come often: the spinning took
the cores FFmpeg's decoder threads and the face models need. A 720p minute of
`avsync check` went from 20 to 14 CPU seconds with one thread (issue 11 note); the
products here are far too small to gain from more.
"""

from __future__ import annotations

import os
import threading

_VARIABLE = "OPENBLAS_NUM_THREADS"
_USER_CHOSE = _VARIABLE in os.environ  # a choice of the user's is left alone
_lock = threading.Lock()
_limited = False


def default_blas_threads() -> None:
    """Before numpy loads OpenBLAS (avsync's import does this): one thread, unless the
    user chose a number. Child processes inherit it."""
    os.environ.setdefault(_VARIABLE, "1")


def one_blas_thread() -> None:
    """Where numpy was imported before avsync, its OpenBLAS pool already started with
    a thread per core: limit it to one, once per process (threadpoolctl). The limit
    is global on purpose: pipelines run side by side in a monitor, and a limit each
    one set and restored would flip under the others."""
    global _limited
    if _USER_CHOSE or _limited:
        return
    with _lock:
        if _limited:
            return
        from threadpoolctl import ThreadpoolController

        # OpenBLAS only: an MKL or BLIS the user loaded keeps its own settings
        ThreadpoolController().select(internal_api="openblas").limit(limits=1)
        _limited = True
