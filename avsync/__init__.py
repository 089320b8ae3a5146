"""avsync: streaming audio/video sync analyzer.

Sign convention everywhere (ITU-R BT.1359, EBU R37, SyncNet): offset > 0 means the
audio leads the picture; offset < 0 means the audio is late.
"""

__version__ = "0.1.0"
