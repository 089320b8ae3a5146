"""Lip-sync analysis of talking heads: windows of mouth features + audio -> offsets.

Each window is scored over a range of candidate offsets by a scorer (the classical
correlation now; the neural model plugs in behind the same call). A window with no
tracked face, or no speech, is reported as such and never guessed. The clip-level
offset comes from the average of the windows' curves, as SyncNet and VocaLiST do:
one window is noisy, a few seconds of them are not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from avsync.estimate import classical
from avsync.estimate.offset import (
    NO_FACE,
    NO_SPEECH,
    Curve,
    OffsetEstimate,
    candidate_offsets,
    estimate,
)
from avsync.features import audio as af
from avsync.records import Window

# Shares of a window that must hold a tracked face / sound for it to be scored.
MIN_FACE_SHARE = 0.6
MIN_SPEECH_SHARE = 0.25


@dataclass(frozen=True)
class LipSyncConfig:
    window_s: float = 3.0
    hop_s: float = 1.0
    max_offset_s: float = 0.6  # +-15 frames at 25 fps
    # prominence (correlation units) that maps to confidence 0.63, and below which a
    # window is "low confidence" rather than measured: set from the training split
    confidence_scale: float = 0.25
    min_prominence: float = 0.1
    lead_s: float = classical.ARTICULATION_LEAD_S
    signal: str = "change"  # classical scorer: "level", "change" or "both"

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop {self.hop_s} s must be positive and at most the window "
                             f"{self.window_s} s, or windows leave gaps")
        if not 0 < self.max_offset_s <= 2.0:
            raise ValueError(f"offset range +-{self.max_offset_s} s must be within +-2 s")


@dataclass
class LipSyncResult:
    windows: list[OffsetEstimate] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)  # of windows with face and speech
    faces_seen: int = 0
    speaker_tracks: Counter = field(default_factory=Counter)  # track id -> windows won


class LipSyncAnalyser:
    """Consumes overlapping Windows whose video features are face.FEATURE_DTYPE records."""

    def __init__(self, config: LipSyncConfig, fps: float) -> None:
        self.config = config
        self.fps = fps
        step = 1.0 / fps
        self.offsets = candidate_offsets(config.max_offset_s, step)
        self.result = LipSyncResult()

    @property
    def audio_margin_s(self) -> float:
        return self.config.max_offset_s + abs(self.config.lead_s) + 0.05

    def reset_at(self, t: float) -> None:
        """Timestamp jump: windows straddling it are cut short by the pipeline already."""

    def feed(self, window: Window) -> None:
        est, curve, track = self._score(window)
        self.result.windows.append(est)
        if curve is not None:
            self.result.curves.append(curve)
        if track is not None:
            self.result.speaker_tracks[track] += 1

    def _score(self, window: Window) -> tuple[OffsetEstimate, Curve | None, int | None]:
        centre = (window.t0 + window.t1) / 2
        rec = window.video_features
        if len(rec):
            self.result.faces_seen = max(self.result.faces_seen, int(rec["faces_seen"].max()))
        tracks = self._tracks(rec, window.video_times)
        if not tracks:
            return OffsetEstimate(centre, NO_FACE), None, None
        power = af.power_frames(window.audio)
        env_t = af.frame_times(len(power), window.audio_t0)
        band = af.speech_band_db(power)
        inside = (env_t >= window.t0) & (env_t < window.t1)
        if not inside.any() or (band[inside] > af.SPEECH_LEVEL_DB).mean() < MIN_SPEECH_SHARE:
            return OffsetEstimate(centre, NO_SPEECH), None, None
        env = af.envelope(band)
        best: tuple[OffsetEstimate, Curve, int] | None = None
        for track_id, (t, opening) in tracks.items():
            scores = classical.correlation_curve(t, opening, env_t, env, self.offsets,
                                                 self.config.lead_s, self.config.signal)
            curve = Curve(self.offsets, scores)
            est = estimate(centre, curve, self.config.confidence_scale,
                           self.config.min_prominence)
            # the active speaker: the face whose lips follow the sound most clearly
            if best is None or est.prominence > best[0].prominence:
                best = (est, curve, track_id)
        return best

    @staticmethod
    def _tracks(rec: np.ndarray, times: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per tracked face present in most of the window: (frame times, lip opening)."""
        out = {}
        if len(rec) < 3:
            return out
        ids = rec["track_id"][rec["present"]]
        for track_id in np.unique(ids):
            mask = rec["present"] & (rec["track_id"] == track_id)
            frames = mask.any(axis=1)
            if frames.mean() < MIN_FACE_SHARE:
                continue
            slot = mask.argmax(axis=1)
            opening = rec["geometry"][np.arange(len(rec)), slot, 0]
            out[int(track_id)] = (times[frames], opening[frames])
        return out

    def clip_estimate(self) -> OffsetEstimate | None:
        """Offset of the whole clip from the average of the windows' curves."""
        if not self.result.curves:
            return None
        mean = Curve(self.offsets, np.mean([c.scores for c in self.result.curves], axis=0))
        t = float(np.mean([w.t for w in self.result.windows]))
        # averaging n windows shrinks the noise; the clip prominence scale follows
        return estimate(t, mean, self.config.confidence_scale, self.config.min_prominence / 2)
