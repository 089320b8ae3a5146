"""Training data: per-clip feature caches and randomly shifted training passes.

A clip is decoded once, through the same producer, media clock and face front end as
`check`, into a ClipFeatures (mouth crops of its main face, their times, 16 kHz mono
audio) cached as .npz, so an epoch never decodes video. A training pass takes
SPEC.frames grid steps where the face is present and someone speaks, shifts the audio
by a random whole number of steps (the label), and augments both sides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.features import audio as af
from avsync.features.face import FaceTracker, MouthFeaturizer
from avsync.media.sources import ANALYSIS_RATE, open_input
from avsync.model import inputs
from avsync.model.spec import SPEC, ModelSpec
from avsync.pipeline import run_source
from avsync.records import Window

CACHE_VERSION = 2  # 2: mesh every SPEC.landmark_every frames, as the model's check
MEDIA_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".m2ts", ".mxf", ".webm", ".flv"}
MIN_SPEECH_SHARE = 0.4  # of a pass's 10 ms frames above the speech level


@dataclass
class ClipFeatures:
    name: str
    video_t: np.ndarray  # (N,) media time of each frame
    mouth: np.ndarray  # (N, H, W) uint8, the main face's mouth crop
    present: np.ndarray  # (N,) the main face was tracked in this frame
    audio: np.ndarray  # (S,) float32, 16 kHz mono
    audio_t0: float

    @property
    def duration_s(self) -> float:
        return float(self.video_t[-1] - self.video_t[0]) if len(self.video_t) else 0.0


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


def extract(path: str | Path) -> ClipFeatures:
    """Decode a clip through the check pipeline and keep what training needs."""
    opened = open_input(str(path))
    collector = _Collector()
    try:
        featurizer = MouthFeaturizer(FaceTracker(landmark_every=SPEC.landmark_every))
        run_source(opened, featurizer, collector, hop_s=1.0)
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
    return ClipFeatures(Path(path).name, video_t, mouth, present, audio, float(audio_t0))


def cached(path: str | Path, cache_dir: str | Path) -> ClipFeatures:
    path = Path(path)
    stat = path.stat()
    key = hashlib.sha1(f"{CACHE_VERSION}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
                       .encode()).hexdigest()[:16]
    file = Path(cache_dir) / f"{path.stem[:40]}-{key}.npz"
    if file.exists():
        z = np.load(file)
        return ClipFeatures(path.name, z["video_t"], z["mouth"], z["present"], z["audio"],
                            float(z["audio_t0"]))
    clip = extract(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, video_t=clip.video_t, mouth=clip.mouth, present=clip.present,
             audio=clip.audio, audio_t0=clip.audio_t0)
    return clip


def usable_starts(clip: ClipFeatures, spec: ModelSpec = SPEC,
                  stride_s: float = 0.04) -> np.ndarray:
    """Start times of passes with the face in every step and speech in the span."""
    if clip.duration_s < spec.frames * spec.step_s:
        return np.zeros(0)
    starts = np.arange(clip.video_t[0], clip.video_t[-1] - spec.frames * spec.step_s, stride_s)
    band = af.speech_band_db(af.power_frames(clip.audio))
    band_t = af.frame_times(len(band), clip.audio_t0)
    speaking = band > af.SPEECH_LEVEL_DB
    keep = []
    for t in starts:
        idx, near = inputs.pick_frames(clip.video_t, inputs.grid_times(t, spec))
        if not (near.all() and clip.present[idx].all()):
            continue
        inside = (band_t >= t) & (band_t < t + spec.frames * spec.step_s)
        if inside.any() and speaking[inside].mean() >= MIN_SPEECH_SHARE:
            keep.append(t)
    return np.array(keep)


@dataclass
class Augment:
    """Randomness applied to one pass; all ranges mild enough to keep lips readable."""

    noise_snr_db: tuple[float, float] = (5.0, 45.0)
    max_jitter_px: int = 4
    flip: bool = True
    blur: float = 0.3  # probability of a 3x3 box blur (soft focus, compression)


def training_pass(clip: ClipFeatures, t_start: float, shift: int, rng: np.random.Generator,
                  augment: Augment | None = None, spec: ModelSpec = SPEC,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for one pass whose audio leads the picture by `shift` steps."""
    offset = shift * spec.step_s
    idx, _ = inputs.pick_frames(clip.video_t, inputs.grid_times(t_start, spec))
    crops = clip.mouth[idx]
    # audio leads by `offset`: the sound of picture time t now sits at t - offset
    audio_t0 = clip.audio_t0 - offset
    # only the samples this pass reads (plus a frame of slack), so augmenting is cheap
    first = t_start - (spec.max_shift + spec.band + 1) * spec.step_s
    lo = max(0, int((first - audio_t0) * af.RATE))
    hi = lo + int((spec.audio_steps + 2) * spec.step_s * af.RATE) + af.WIN
    audio = clip.audio[lo:hi]
    if augment:
        crops = _augment_crops(crops, rng, augment)
        audio = _augment_audio(audio, rng, augment)
    mel = inputs.audio_input(audio, audio_t0 + lo / af.RATE, t_start, 0, spec)
    return inputs.mouth_input(crops), mel


def _augment_crops(crops: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    x = crops.astype(np.float32)
    j = aug.max_jitter_px
    dy, dx = rng.integers(-j, j + 1, size=2)
    x = np.roll(x, (int(dy), int(dx)), axis=(1, 2))  # the crop box a few pixels off
    if aug.flip and rng.random() < 0.5:
        x = x[:, :, ::-1]
    if rng.random() < aug.blur:
        x = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2) + np.roll(x, -1, 2)) / 5
    x = x * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)  # lighting
    x += rng.normal(0, rng.uniform(0, 6), x.shape)  # sensor / compression noise
    return np.clip(x, 0, 255).astype(np.uint8)


def _augment_audio(audio: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    level = np.sqrt(np.mean(audio**2)) + 1e-6
    snr = rng.uniform(*aug.noise_snr_db)
    noise = rng.normal(0, level / 10 ** (snr / 20), len(audio)).astype(np.float32)
    if rng.random() < 0.5:  # coloured (low-passed) noise: hum, room, crowd
        noise = np.convolve(noise, np.ones(8, np.float32) / 8, mode="same") * 2.8
    return audio * np.float32(rng.uniform(0.3, 1.5)) + noise
