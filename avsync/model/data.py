"""Training data: per-clip feature caches, and clips laid out on the model's grid.

A clip is decoded once, through the same producer, media clock and face front end as
`check`, into a ClipFeatures (mouth crops of its main face, their times, lip opening,
16 kHz mono audio) cached as .npz, so training never decodes video. `to_grid` puts it
on the model's 25 Hz grid (nearest frame per step, log-mel per step, which steps have
a face, audio and speech), so a training pass is a slice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from avsync.features import audio as af
from avsync.features.face import SEARCH_EVERY, FaceTracker, MouthFeaturizer
from avsync.media.sources import ANALYSIS_RATE, VIDEO_DECODER_OPTIONS, open_input
from avsync.model import inputs
from avsync.model.spec import SPEC, ModelSpec
from avsync.pipeline import run_source
from avsync.records import Window

CACHE_VERSION = 4  # 3: lip opening kept beside the crops; 4: the lip contour too
MEDIA_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".m2ts", ".mxf", ".webm", ".flv"}


@dataclass
class ClipFeatures:
    name: str
    video_t: np.ndarray  # (N,) media time of each frame
    mouth: np.ndarray  # (N, H, W) uint8, the main face's mouth crop
    present: np.ndarray  # (N,) the main face was tracked in this frame
    audio: np.ndarray  # (S,) float32, 16 kHz mono
    audio_t0: float
    # (N,) inner-lip opening / eye distance of the main face; NaN where the mesh skipped
    opening: np.ndarray | None = None
    # (N, N_LIP, 3) its lip contour, pose-normalised (avsync.features.lips); NaN likewise
    lips: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return float(self.video_t[-1] - self.video_t[0]) if len(self.video_t) else 0.0

    @property
    def fps(self) -> float:
        return 1.0 / float(np.median(np.diff(self.video_t))) if len(self.video_t) > 1 else 25.0


def held_out(name: str, share: float) -> bool:
    """Whether a clip is held out of training (for progress figures and zero checks):
    chosen by a hash of its file name, so the same clips whatever else is in the set."""
    digest = int(hashlib.sha1(Path(name).name.encode()).hexdigest()[:8], 16)
    return share > 0 and digest / 0xFFFFFFFF < share


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "avsync" / "features"


def media_files(folder: str | Path) -> list[Path]:
    """Media files under a folder (recursively), by name."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)


class _Collector:
    def __init__(self) -> None:
        self.windows: list[Window] = []

    def feed(self, window: Window) -> None:
        self.windows.append(window)

    def reset_at(self, t: float) -> None:
        pass


def extract(path: str | Path, landmark_every: int = SPEC.landmark_every,
            detect_every: int = SPEC.detect_every) -> ClipFeatures:
    """Decode a clip through the check pipeline and keep what training needs."""
    opened = open_input(str(path))
    collector = _Collector()
    try:
        featurizer = MouthFeaturizer(FaceTracker(detect_every=detect_every,
                                                 landmark_every=landmark_every))
        run_source(opened, featurizer, collector, hop_s=1.0, feature_thread=True)
    finally:
        opened.container.close()
    ws = [w for w in collector.windows if len(w.video_times)]
    if not ws:
        raise ValueError(f"{path}: no video decoded")
    rec = np.concatenate([w.video_features for w in ws])
    video_t = np.concatenate([w.video_times for w in ws])
    ids = rec["track_id"][rec["present"]]
    main = int(np.bincount(ids).argmax()) if len(ids) else 0
    mask = rec["present"] & (rec["track_id"] == main)
    present = mask.any(axis=1)
    slot = mask.argmax(axis=1)
    mouth = rec["mouth"][np.arange(len(rec)), slot]
    audio_t0 = min(w.audio_t0 for w in collector.windows)
    end = max(w.audio_t0 + len(w.audio) / w.audio_rate for w in collector.windows)
    audio = np.zeros(int(round((end - audio_t0) * ANALYSIS_RATE)), np.float32)
    for w in collector.windows:
        at = int(round((w.audio_t0 - audio_t0) * ANALYSIS_RATE))
        audio[at : at + len(w.audio)] = w.audio[: max(0, len(audio) - at)]
    opening = rec["geometry"][np.arange(len(rec)), slot, 0].astype(np.float32)
    opening[~present] = np.nan
    lips = rec["lips"][np.arange(len(rec)), slot]
    lips[~present] = np.nan
    return ClipFeatures(Path(path).name, video_t, mouth, present, audio, float(audio_t0),
                        opening, lips)


def content_hash(path: Path) -> str:
    """sha1 of a file's bytes: a cache keyed by it (and the file's name) survives a
    copy, a move or a mount that renews modification times (../shared comes back with
    new ones each session, and a key of path and mtime made every training run decode
    54 minutes again)."""
    stat = path.stat()
    return _content_hash(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    """Read once per process and version of the file: an evaluation asks for the same
    clip once per applied offset."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached(path: str | Path, cache_dir: str | Path,
           landmark_every: int = SPEC.landmark_every,
           detect_every: int = SPEC.detect_every) -> ClipFeatures:
    """extract(), kept as .npz under cache_dir (keyed by the file and the front end)."""
    path = Path(path)
    decoder = ",".join(f"{k}={v}" for k, v in sorted(VIDEO_DECODER_OPTIONS.items()))
    front = f":mesh{landmark_every}:det{detect_every}:search{SEARCH_EVERY}" + (
        f":{decoder}" if decoder else "")  # no options: the key caches had before them
    key = hashlib.sha1(f"{CACHE_VERSION}:{content_hash(path)}{front}".encode()
                       ).hexdigest()[:16]
    file = Path(cache_dir) / f"{path.stem[:40]}-{key}.npz"
    if file.exists():
        z = np.load(file)
        return ClipFeatures(path.name, z["video_t"], z["mouth"], z["present"], z["audio"],
                            float(z["audio_t0"]), z["opening"], z["lips"])
    clip = extract(path, landmark_every, detect_every)
    file.parent.mkdir(parents=True, exist_ok=True)
    # a killed run leaves no half-written cache; runs side by side each write their own
    tmp = file.with_suffix(f".{os.getpid()}.part.npz")
    np.savez(tmp, video_t=clip.video_t, mouth=clip.mouth, present=clip.present,
             audio=clip.audio, audio_t0=clip.audio_t0, opening=clip.opening, lips=clip.lips)
    tmp.replace(file)
    return clip


@dataclass
class GridClip:
    """One clip on the model's grid. Video step k is at t0 + k * step_s; audio step j
    (of the padded arrays) starts at t0 + (j - pad) * step_s."""

    name: str
    source: str
    t0: float
    mouth: np.ndarray  # (n, H, W) uint8
    video_ok: np.ndarray  # (n,) the main face is tracked at this step
    mel: np.ndarray  # (mels_per_step * (n + 2 pad), n_mels) float32 dB; silence outside
    audio_ok: np.ndarray  # (n + 2 pad,) the clip holds this step's audio
    speech: np.ndarray  # (n + 2 pad,) share of the step's 10 ms frames that are speech
    pad: int
    # (n, N_LIP, 3) lip contour, gaps between mesh frames filled over the whole clip
    # (what training reads); lip_read marks the steps the mesh read and lip_t their
    # frame times, so an evaluation can refill a pass from its own frames as inference
    # does. Training on per-pass fills was tried and scored lower (73.6% against 75.8%
    # of trusted validation clips, offline, one run each), so training keeps this fill
    lips: np.ndarray | None = None
    lip_read: np.ndarray | None = None
    lip_t: np.ndarray | None = None

    def pass_lips(self, pick: np.ndarray) -> np.ndarray:
        """The steps `pick` of one pass with the gaps filled from the pass alone, as
        ModelScorer fills them."""
        raw = np.where(self.lip_read[pick, None, None], self.lips[pick], np.nan)
        return inputs.fill_gaps(self.lip_t[pick], raw)

    @property
    def steps(self) -> int:
        return len(self.mouth)


def to_grid(clip: ClipFeatures, source: str = "", spec: ModelSpec = SPEC,
            pad: int | None = None, own_offset_s: float = 0.0) -> GridClip:
    """Lay a clip on the model's grid, with `pad` steps of audio either side (default:
    every shift and the encoder's reach). own_offset_s: the clip's own offset (> 0: its
    audio leads), taken out so the clip serves for relative shifts."""
    pad = spec.max_shift + spec.margin if pad is None else pad
    if own_offset_s:  # the sound of picture time t sits at t - own: delay it back
        clip = ClipFeatures(clip.name, clip.video_t, clip.mouth, clip.present, clip.audio,
                            clip.audio_t0 + own_offset_s, clip.opening, clip.lips)
    n = int(np.floor(clip.duration_s / spec.step_s)) + 1 if len(clip.video_t) else 0
    t0 = float(clip.video_t[0]) if n else 0.0
    grid = t0 + np.arange(n) * spec.step_s
    idx, near = inputs.pick_frames(clip.video_t, grid)
    video_ok = near & clip.present[idx] if n else np.zeros(0, bool)
    first = t0 - pad * spec.step_s
    n_audio = n + 2 * pad
    n_frames = n_audio * spec.mels_per_step
    # one analysis of the samples serves the log-mel and the speech level alike
    power = af.power_frames(inputs.sample_chunk(clip.audio, clip.audio_t0, first, n_frames,
                                                hop_s=spec.step_s / spec.mels_per_step))
    mel = af.log_mel(power)[:n_frames]
    step_start = first + np.arange(n_audio) * spec.step_s
    audio_end = clip.audio_t0 + len(clip.audio) / af.RATE
    audio_ok = (step_start >= clip.audio_t0 - 1e-6) & (step_start + spec.step_s
                                                      <= audio_end + 1e-6)
    loud = (af.speech_band_db(power) > af.SPEECH_LEVEL_DB)[:n_frames]
    loud = np.pad(loud, (0, n_frames - len(loud)))
    speech = loud.reshape(n_audio, spec.mels_per_step).mean(axis=1) * audio_ok
    lips = lip_read = None
    if clip.lips is not None:
        lips = inputs.fill_gaps(clip.video_t, clip.lips)[idx]
        lip_read = np.isfinite(clip.lips[idx]).all(axis=(1, 2))
    return GridClip(clip.name, source, t0, clip.mouth[idx], video_ok, mel, audio_ok,
                    speech.astype(np.float32), pad, lips, lip_read, clip.video_t[idx])

