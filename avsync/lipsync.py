"""Lip-sync analysis of talking heads: windows of mouth features + audio -> offsets.

Each window is scored over a range of candidate offsets by a Scorer: the sync model
(avsync.model.infer) when this install ships one, else the classical correlation
(avsync.estimate.classical). A window with no tracked face, or no speech, is reported
as such and never guessed. The clip-level offset comes from the average of the
windows' curves, as SyncNet and VocaLiST do: one window is noisy, a few seconds of
them are not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from avsync.errors import UsageError
from avsync.estimate import classical
from avsync.estimate.offset import (
    MEASURED,
    NO_FACE,
    NO_SPEECH,
    Curve,
    OffsetEstimate,
    estimate,
)
from avsync.evidence import EvidenceKeeper
from avsync.features import audio as af
from avsync.features.face import FaceTracker, MouthFeaturizer
from avsync.records import Window

# Shares of a window that must hold a tracked face / sound for it to be scored.
MIN_FACE_SHARE = 0.6
MIN_SPEECH_SHARE = 0.25
SCORERS = ("auto", "model", "classical")


@dataclass(frozen=True)
class FaceTrack:
    """One tracked face inside a window: the frames it is present in."""

    track_id: int
    times: np.ndarray  # (n,) media times
    opening: np.ndarray  # (n,) inner-lip opening / eye distance; NaN where the mesh skipped
    mouth: np.ndarray  # (n, H, W) uint8 mouth crops
    lips: np.ndarray  # (n, N_LIP, 3) lip contour (avsync.features.lips); NaN likewise


class Scorer(Protocol):
    method: str  # the report's `method`
    confidence_scale: float  # prominence that maps to confidence 0.63
    min_prominence: float  # below it a window is low confidence, not measured
    # fitted (evidence, share within a frame) pairs that replace the scale, or None
    confidence_knots: np.ndarray | None
    landmark_every: int  # face mesh every n frames: how often the scorer needs landmarks
    detect_every: int  # face detection every n frames while a face is tracked

    def candidate_offsets(self, max_offset_s: float, fps: float) -> np.ndarray: ...
    def audio_margin_s(self, max_offset_s: float) -> float: ...
    def scores(self, track: FaceTrack, window: Window,
               offsets: np.ndarray) -> Curve | None: ...
    def describe(self) -> dict: ...


@dataclass(frozen=True)
class LipSyncConfig:
    window_s: float = 3.0
    hop_s: float = 1.0
    max_offset_s: float = 0.6  # +-15 frames at 25 fps
    # "auto": the sync model when this install ships one (it beats the classical scorer
    # on speakers it never saw: avsync/model/weights/CARD.md), else classical
    scorer: str = "auto"
    model_path: str | None = None  # an ONNX sync model other than the shipped one
    # classical scorer only
    lead_s: float = classical.ARTICULATION_LEAD_S
    signal: str = "change"  # "level", "change" or "both"

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop {self.hop_s} s must be positive and at most the window "
                             f"{self.window_s} s, or windows leave gaps")
        if not 0 < self.max_offset_s <= 2.0:
            raise ValueError(f"offset range +-{self.max_offset_s} s must be within +-2 s")
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer {self.scorer!r}: use one of {', '.join(SCORERS)}")


def make_scorer(config: LipSyncConfig) -> Scorer:
    if config.scorer in ("auto", "model") or config.model_path:
        from avsync.model.infer import ModelScorer, weights_path

        if config.model_path or weights_path() is not None:
            return ModelScorer(config.model_path)
        if config.scorer == "model":
            raise UsageError("no sync model in this install (avsync/model/weights): "
                             "use --scorer classical or --model FILE")
    return classical.ClassicalScorer(config.lead_s, config.signal)


@dataclass
class LipSyncResult:
    windows: list[OffsetEstimate] = field(default_factory=list)
    window_curves: list[Curve | None] = field(default_factory=list)  # one per window
    faces_seen: int = 0
    speaker_tracks: Counter = field(default_factory=Counter)  # track id -> windows won

    @property
    def curves(self) -> list[Curve]:
        """The curves of windows with a face and speech."""
        return [c for c in self.window_curves if c is not None]


class LipSyncAnalyser:
    """Consumes overlapping Windows whose video features are face.FEATURE_DTYPE records."""

    def __init__(self, config: LipSyncConfig, fps: float, scorer: Scorer | None = None,
                 evidence: EvidenceKeeper | None = None) -> None:
        self.config = config
        self.fps = fps
        self.scorer = scorer or make_scorer(config)
        self.offsets = self.scorer.candidate_offsets(config.max_offset_s, fps)
        self.result = LipSyncResult()
        self.evidence = evidence  # keeps the crops and sound of a few windows (reports)
        self.featurizer: MouthFeaturizer | None = None  # the last front_end() made

    @property
    def method(self) -> str:
        return self.scorer.method

    @property
    def audio_margin_s(self) -> float:
        return self.scorer.audio_margin_s(self.config.max_offset_s)

    def front_end(self) -> MouthFeaturizer:
        """The per-frame featurizer this analyser's scorer needs."""
        self.featurizer = MouthFeaturizer(FaceTracker(detect_every=self.scorer.detect_every,
                                                      landmark_every=self.scorer.landmark_every))
        return self.featurizer

    def speaker_thumbnail(self) -> np.ndarray | None:
        """A small grey picture of the face that spoke in most windows, if the front end
        this analyser made kept one."""
        if self.featurizer is None or not self.result.speaker_tracks:
            return None
        track = self.result.speaker_tracks.most_common(1)[0][0]
        return self.featurizer.thumbnails.get(track)

    def reset_at(self, t: float) -> None:
        """Timestamp jump: windows straddling it are cut short by the pipeline already."""

    def feed(self, window: Window) -> None:
        est, curve, track = self.score_window(window)
        self.result.windows.append(est)
        self.result.window_curves.append(curve)
        if track is not None:
            self.result.speaker_tracks[track] += 1
        if self.evidence is not None and est.status == MEASURED and track is not None:
            face = next((f for f in self._tracks(window.video_features, window.video_times)
                         if f.track_id == track), None)
            if face is not None:  # evidence is a view of the result, never a reason to fail
                self.evidence.consider(window, face, est.offset_s, est.confidence,
                                       self.config.window_s)

    def score_window(self, window: Window) -> tuple[OffsetEstimate, Curve | None, int | None]:
        """One window's estimate, its curve (None without a face and speech) and the
        speaker's track id; nothing is recorded (monitors score without keeping)."""
        centre = (window.t0 + window.t1) / 2
        rec = window.video_features
        if len(rec):
            self.result.faces_seen = max(self.result.faces_seen, int(rec["faces_seen"].max()))
        tracks = self._tracks(rec, window.video_times)
        if not tracks:
            return OffsetEstimate(centre, NO_FACE), None, None
        band = af.speech_band_db(af.power_frames_between(window.audio, window.audio_t0,
                                                         window.t0, window.t1))
        if not len(band) or (band > af.SPEECH_LEVEL_DB).mean() < MIN_SPEECH_SHARE:
            return OffsetEstimate(centre, NO_SPEECH), None, None
        best: tuple[OffsetEstimate, Curve, int] | None = None
        for track in tracks:
            curve = self.scorer.scores(track, window, self.offsets)
            if curve is None:
                continue
            est = estimate(centre, curve, self.scorer.confidence_scale,
                           self.scorer.min_prominence, self.scorer.confidence_knots)
            # the active speaker: the face whose lips follow the sound most clearly
            if best is None or est.prominence > best[0].prominence:
                best = (est, curve, track.track_id)
        return best or (OffsetEstimate(centre, NO_FACE), None, None)

    @staticmethod
    def _tracks(rec: np.ndarray, times: np.ndarray) -> list[FaceTrack]:
        """Tracked faces present in most of the window."""
        out: list[FaceTrack] = []
        if len(rec) < 3:
            return out
        ids = rec["track_id"][rec["present"]]
        for track_id in np.unique(ids):
            mask = rec["present"] & (rec["track_id"] == track_id)
            frames = mask.any(axis=1)
            if frames.mean() < MIN_FACE_SHARE:
                continue
            slot = mask.argmax(axis=1)[frames]
            rows = np.flatnonzero(frames)
            out.append(FaceTrack(int(track_id), times[frames], rec["geometry"][rows, slot, 0],
                                 rec["mouth"][rows, slot], rec["lips"][rows, slot]))
        return out

    def clip_estimate(self, first: int = 0, stop: int | None = None) -> OffsetEstimate | None:
        """Offset of the whole clip (or of windows first..stop) from the windows' curves,
        averaged with weights of evidence x confidence: a window whose peak stands
        out counts more than one that barely has a peak (or none)."""
        return self.clip_estimate_and_curve(first, stop)[0]

    def clip_estimate_and_curve(self, first: int = 0, stop: int | None = None
                                ) -> tuple[OffsetEstimate | None, Curve | None]:
        """clip_estimate() and the averaged curve it was read from."""
        scored = [(c, w) for c, w in zip(self.result.window_curves[first:stop],
                                         self.result.windows[first:stop], strict=True)
                  if c is not None]
        if not scored:
            return None, None
        curves = np.array([c.scores for c, _ in scored])
        # a floor, so a clip whose every window is unsure still gets its best average
        weights = np.array([c.weight * max(w.confidence, 0.05) for c, w in scored])
        have = np.isfinite(curves)
        total = (np.where(have, curves, 0.0) * weights[:, None]).sum(axis=0)
        mass = (have * weights[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(mass > 0, total / mass, np.nan)  # NaN: an offset no window scored
        # the evidence of one window: averaging more windows already shows in the mean
        # curve (its noise shrinks, a real peak stays), and the confidence is fitted on
        # windows; more weight would turn a long run of noise into a sure clip
        mean = Curve(self.offsets, scores, max(c.weight for c, _ in scored))
        t = float(np.mean([w.t for w in self.result.windows[first:stop]]))
        # averaging n windows shrinks the noise; the clip prominence scale follows
        return estimate(t, mean, self.scorer.confidence_scale, self.scorer.min_prominence / 2,
                        self.scorer.confidence_knots), mean
