"""Small frozen records passed between the stages (sources -> rings -> analysis -> report)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float | None  # nominal frame rate; None when the container does not say


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    track: int = 1  # which audio track is measured, 1-based
    tracks: int = 1  # audio tracks in the input
    chosen_by: str = "only"  # "only", "speech" (the one that sounds like it) or "asked"


@dataclass(frozen=True)
class MediaInfo:
    """What a source found when it opened its input."""

    url: str  # already redacted of credentials
    format_name: str
    duration_s: float | None
    video: VideoInfo | None
    audio: AudioInfo | None


@dataclass(frozen=True, eq=False)
class Window:
    """Aligned video features and audio samples for the media-time span [t0, t1).

    video_times[i] is the presentation time of video_features[i]; audio sample k is at
    audio_t0 + k / audio_rate. All times are seconds on the stream's media clock.
    """

    t0: float
    t1: float
    video_times: np.ndarray
    video_features: np.ndarray
    audio: np.ndarray
    audio_t0: float
    audio_rate: int
    # media times where silence put in for lost audio ends (in the audio's span): a
    # sound that began inside the hole is heard starting there
    audio_hole_ends: tuple[float, ...] = ()

    @property
    def audio_times(self) -> np.ndarray:
        return self.audio_t0 + np.arange(len(self.audio)) / self.audio_rate


@dataclass(frozen=True)
class SourceStats:
    """Counters a producer keeps; all monotonic."""

    video_frames: int = 0
    audio_samples: int = 0
    decode_errors: int = 0
    timestamp_jumps: int = 0
    timestamp_strays: int = 0  # items out of timestamp order, dropped (media.clock)
    video_dropped: int = 0
    audio_dropped_samples: int = 0
    audio_gap_samples: int = 0
