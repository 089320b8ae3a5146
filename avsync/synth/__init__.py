"""Media with a known truth, made on the spot: nothing to download.

- `signal`: flash/beep test signals (exact truth; `avsync generate`).
- `talking_head`: a real face photograph whose mouth follows a synthetic utterance,
  with a known audio offset (lip-sync tests and the demo).
"""

from avsync.synth.signal import (
    AUDIO_CODECS,
    VIDEO_CODECS,
    TestSignalSpec,
    TestSignalTruth,
    frame_times,
    parse_fps,
    parse_size,
    plan_events,
    tone_bursts,
    write_test_signal,
)
from avsync.synth.talking_head import TalkingHeadSpec, write_talking_head

__all__ = [
    "AUDIO_CODECS", "VIDEO_CODECS", "TalkingHeadSpec", "TestSignalSpec", "TestSignalTruth",
    "frame_times", "parse_fps", "parse_size", "plan_events", "tone_bursts",
    "write_talking_head", "write_test_signal",
]
