"""A synthetic talking head with a known offset, for tests and the demo.

The face is a real photograph that ships inside matplotlib (Grace Hopper, in its
sample data), so nothing is downloaded. The speech is synthetic: voiced syllables
(a glottal-like harmonic series through two formants) with random lengths and
pauses. The mouth opens with each syllable's envelope, ARTICULATION_LEAD_S before
the sound, as real mouths do, and the audio is then shifted by the offset
(> 0: audio leads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.estimate.classical import ARTICULATION_LEAD_S as CLASSICAL_LEAD_S

# The mouth opens before the sound it shapes: by as much as the lip opening leads the
# speech envelope in trusted real recordings (the classical scorer's fitted lead), so
# a synthetic head that is "in sync" is in sync the way real speakers are.
ARTICULATION_LEAD_S = CLASSICAL_LEAD_S
RATE = 16_000


@dataclass(frozen=True)
class TalkingHeadSpec:
    duration_s: float = 12.0
    fps: Fraction = Fraction(25)
    offset_ms: float = 0.0
    seed: int = 0
    faces: int = 1  # with 2, a second face moves its mouth out of step with the audio
    size_scale: float = 0.5  # of the 512x600 photograph, per face
    jump: tuple[float, float] | None = None  # (at_s, offset_ms from then on): a splice
    canvas: tuple[int, int] | None = None  # (width, height): the head centred in a frame
    # this size, e.g. (1280, 720) for broadcast-sized decoding


def face_photo() -> np.ndarray:
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(matplotlib.image.imread(path))[:, :, :3].copy()


def syllable_track(duration_s: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start, length) of voiced syllables: 120-320 ms, with 60-400 ms pauses."""
    out, t = [], 0.4
    while t < duration_s - 0.5:
        length = rng.uniform(0.12, 0.32)
        out.append((t, length))
        t += length + rng.uniform(0.06, 0.4)
    return out


def envelope(t: np.ndarray, syllables: list[tuple[float, float]]) -> np.ndarray:
    """0..1: a raised-cosine hump per syllable."""
    env = np.zeros_like(t)
    for start, length in syllables:
        inside = (t >= start) & (t < start + length)
        env[inside] = np.sin(np.pi * (t[inside] - start) / length) ** 0.7
    return env


def speech(duration_s: float, syllables, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(duration_s * RATE)) / RATE
    f0 = 140 + 25 * np.sin(2 * np.pi * 0.7 * t)  # a slowly gliding voice
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    # two formant-like emphases (around 700 and 1200 Hz) through the harmonic amplitudes
    voice += 0.8 * np.sin(5 * phase) + 0.5 * np.sin(8 * phase)
    noise = rng.normal(0, 0.02, len(t))
    return (0.25 * envelope(t, syllables) * voice + noise * 0.2).astype(np.float32)


def _mouth_of(photo: np.ndarray) -> tuple[float, float, float]:
    """Mouth centre (x, y) and width in the photo, found by the project's face mesh."""
    from avsync.features.face import FaceTracker
    from avsync.features.image import FrameImage

    frame = av.VideoFrame.from_ndarray(photo, format="rgb24").reformat(format="yuv420p")
    followed = FaceTracker()(FrameImage(frame))
    if not followed:
        raise RuntimeError("the face model found no face in the sample photograph")
    points = followed[0][1]
    centre = (points[13] + points[14]) / 2
    width = np.linalg.norm(points[61, :2] - points[291, :2])  # in the picture: no depth
    return float(centre[0]), float(centre[1]), float(width)


def write_talking_head(path: str | Path, spec: TalkingHeadSpec) -> None:
    rng = np.random.default_rng(spec.seed)
    photo = face_photo()
    mx, my, mw = _mouth_of(photo)
    h, w = photo.shape[:2]
    out_w = int(w * spec.size_scale) // 2 * 2
    out_h = int(h * spec.size_scale) // 2 * 2
    syllables = syllable_track(spec.duration_s, rng)
    # the other face (if any) mouths a different utterance
    other = syllable_track(spec.duration_s, np.random.default_rng(spec.seed + 1000))
    audio = speech(spec.duration_s, syllables, rng)
    # > 0: audio leads: the sample heard at time n carries the sound of picture time n + d
    n = np.arange(len(audio))
    offset_ms = np.full(len(audio), spec.offset_ms)
    if spec.jump:
        offset_ms[n >= spec.jump[0] * RATE] = spec.jump[1]
    src = n + np.round(offset_ms / 1000 * RATE).astype(int)
    inside = (src >= 0) & (src < len(audio))
    audio = np.where(inside, audio[np.clip(src, 0, len(audio) - 1)], 0).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    n_frames = math.floor(spec.duration_s * spec.fps)
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=spec.fps)
        frame_w, frame_h = spec.canvas or (out_w * spec.faces, out_h)
        if frame_w < out_w * spec.faces or frame_h < out_h:
            raise ValueError(f"canvas {frame_w}x{frame_h} is smaller than the heads")
        vs.width, vs.height, vs.pix_fmt = frame_w, frame_h, "yuv420p"
        background = np.full((frame_h, frame_w, 3), 40, np.uint8)
        top, left = (frame_h - out_h) // 2 // 2 * 2, (frame_w - out_w * spec.faces) // 2 // 2 * 2
        vs.options = {"preset": "veryfast", "crf": "20"}
        aus = container.add_stream("aac", rate=RATE)
        aus.layout = "mono"
        audio_pos = 0
        for n in range(n_frames):
            t = float(n / spec.fps)
            tiles = []
            for face in range(spec.faces):
                track = syllables if face == 0 else other
                # the mouth shapes the sound ARTICULATION_LEAD_S before it is heard
                opening = float(envelope(np.array([t + ARTICULATION_LEAD_S]), track)[0])
                tiles.append(_draw_mouth(photo, xx, yy, mx, my, mw, opening)[
                    :: int(round(1 / spec.size_scale)), :: int(round(1 / spec.size_scale))
                ][:out_h, :out_w])
            picture = np.concatenate(tiles, axis=1)
            if spec.canvas:
                canvas = background.copy()
                canvas[top : top + out_h, left : left + picture.shape[1]] = picture
                picture = canvas
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = n
            frame.time_base = 1 / spec.fps
            container.mux(vs.encode(frame))
            until = min(len(audio), math.floor((n + 1) / spec.fps * RATE))
            while audio_pos + 1024 <= until or (n == n_frames - 1 and audio_pos < until):
                chunk = audio[audio_pos : audio_pos + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = RATE, audio_pos, Fraction(1, RATE)
                container.mux(aus.encode(af))
                audio_pos += len(chunk)
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))


def _draw_mouth(photo, xx, yy, mx, my, mw, opening: float) -> np.ndarray:
    """The photo with its mouth opened by `opening` (0..1): a dark oval between the lips,
    the lower lip and chin pushed down by half of it."""
    img = photo.copy()
    if opening <= 0.02:
        return img
    gap = 0.3 * mw * opening  # the inner-lip gap at full opening: 30% of mouth width
    # push the lower face down: rows below the mouth come from higher up
    below = slice(int(my), min(img.shape[0], int(my + 2.2 * mw)))
    src_rows = np.clip(np.arange(below.start, below.stop) - int(gap / 2), 0, img.shape[0] - 1)
    x0, x1 = int(mx - mw), int(mx + mw)
    img[below, x0:x1] = photo[src_rows, x0:x1]
    oval = ((xx - mx) / (0.42 * mw)) ** 2 + ((yy - my - gap / 4) / max(gap / 2, 1.0)) ** 2 <= 1
    img[oval] = (img[oval] * 0.15 + np.array([60, 20, 25]) * 0.85).astype(np.uint8)
    return img
