"""avsync: streaming audio/video sync analyzer.

Sign convention everywhere (ITU-R BT.1359, EBU R37, SyncNet): offset > 0 means the
audio leads the picture; offset < 0 means the audio is late.
"""

from avsync.cpu import default_blas_threads

default_blas_threads()  # before anything of avsync's loads numpy (avsync.cpu: why)

__version__ = "0.1.0"
