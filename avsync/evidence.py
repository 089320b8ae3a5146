"""Evidence a person can check: the lips and the sound a lip-sync verdict rests on.

During a check, an EvidenceKeeper keeps a few windows' worth of what the model saw: for
the most confident windows (apart from each other) and the least confident measured
one, ~1.5 s of the speaker's mouth crops, their lip opening, and the speech envelope of
the sound around them. `strip_png` draws one as a filmstrip: the crops, the mouth's
opening, and the speech envelope twice, as recorded and moved by the measured offset.
When the offset is right, the moved envelope's bursts sit under the mouth's openings
(the mouth opens a little before the sound it shapes); the recorded one is off by the
offset. Memory is bounded: a few windows, each ~0.4 MB.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from avsync.features import audio as af

if TYPE_CHECKING:  # lipsync imports this module
    from avsync.lipsync import FaceTrack
    from avsync.records import Window

STRIP_S = 1.5  # media shown per window: a few syllables
KEEP_SURE = 4  # most confident windows kept (the report shows 3-5)
CROP_W, CROP_H = 96, 48  # each frame on the strip: the crop as the model sees it
ROW_H = 36  # height of each curve's band
LABEL_W = 112  # left margin for the band labels


@dataclass(frozen=True, eq=False)  # compared by identity: it holds arrays
class Evidence:
    """One window's evidence. Times are media seconds; the envelope is the speech-band
    level per 10 ms frame (dB), over the strip widened by the offset so the moved copy
    covers it."""

    t: float  # the window's centre
    t0: float
    t1: float
    offset_ms: float
    confidence: float
    label: str  # "most confident" or "least confident"
    frame_times: np.ndarray
    crops: np.ndarray  # (n, H, W) uint8
    opening: np.ndarray  # (n,) lip opening / eye distance; NaN where the mesh skipped
    envelope_times: np.ndarray
    envelope_db: np.ndarray

    def moved_envelope_times(self) -> np.ndarray:
        """Where each envelope sample belongs on the picture's clock: the sound of
        picture time t was recorded at t - offset (> 0: the audio leads), so a sample
        recorded at s lines up with the picture at s + offset."""
        return self.envelope_times + self.offset_ms / 1000

    def to_json(self, png: str | None = None) -> dict:
        out = {"t": round(self.t, 3), "t0": round(self.t0, 3), "t1": round(self.t1, 3),
               "offset_ms": round(self.offset_ms, 1),
               "confidence": round(self.confidence, 3), "label": self.label}
        if png:
            out["png"] = png
        return out


class EvidenceKeeper:
    """Keeps the evidence of a bounded number of windows as a check goes."""

    def __init__(self, keep: int = KEEP_SURE, span_s: float = STRIP_S) -> None:
        self.keep, self.span_s = keep, span_s
        self.sure: list[Evidence] = []  # most confident first, none within a window
        self.least: Evidence | None = None

    def consider(self, window: Window, track: FaceTrack, offset_s: float,
                 confidence: float, window_s: float) -> None:
        """A measured window: kept if it is among the surest (apart from the kept ones:
        overlapping windows show the same lips) or the least sure so far."""
        centre = (window.t0 + window.t1) / 2
        near = [e for e in self.sure if abs(e.t - centre) < window_s]
        surer = not near or confidence > max(e.confidence for e in near)
        fits = len(self.sure) - len(near) < self.keep or confidence > self.sure[-1].confidence
        if surer and fits:
            self.sure = [e for e in self.sure if e not in near]
            self.sure.append(self._take(window, track, offset_s, confidence,
                                        "most confident"))
            self.sure.sort(key=lambda e: -e.confidence)
            del self.sure[self.keep:]
        if self.least is None or confidence < self.least.confidence:
            self.least = self._take(window, track, offset_s, confidence, "least confident")

    def chosen(self) -> list[Evidence]:
        """The surest windows in time order, then the least sure one (unless it is one of
        them: a clip with a single measured window)."""
        out = sorted(self.sure, key=lambda e: e.t)
        if self.least is not None and all(e.t != self.least.t for e in out):
            out.append(self.least)
        return out

    def _take(self, window: Window, track: FaceTrack, offset_s: float, confidence: float,
              label: str) -> Evidence:
        centre = (window.t0 + window.t1) / 2
        t0 = max(window.t0, centre - self.span_s / 2)
        t1 = min(window.t1, t0 + self.span_s)
        keep = (track.times >= t0) & (track.times < t1)
        lo, hi = t0 - abs(offset_s) - 0.1, t1 + abs(offset_s) + 0.1
        band = af.speech_band_db(af.power_frames_between(window.audio, window.audio_t0,
                                                         lo, hi))
        frames = max(0, (len(window.audio) - af.WIN) // af.HOP + 1)
        times = af.frame_times(frames, window.audio_t0)
        times = times[(times >= lo) & (times < hi)]
        return Evidence(centre, t0, t1, offset_s * 1000, confidence, label,
                        track.times[keep].copy(), track.mouth[keep].copy(),
                        np.asarray(track.opening[keep], np.float32).copy(),
                        times, band.astype(np.float32))


def strip_png(evidence: Evidence) -> bytes:
    """The filmstrip as a greyscale PNG: mouth crops, then three bands on the same time
    axis: the lip opening, the speech envelope as recorded, and moved by the offset."""
    from PIL import Image, ImageDraw

    n = max(1, len(evidence.crops))
    width = LABEL_W + n * CROP_W
    height = CROP_H + 3 * ROW_H + 6
    image = Image.new("L", (width, height), 255)
    for i, crop in enumerate(evidence.crops):
        tile = Image.fromarray(crop).resize((CROP_W, CROP_H), Image.BILINEAR)
        image.paste(tile, (LABEL_W + i * CROP_W, 0))
    draw = ImageDraw.Draw(image)
    span = max(evidence.t1 - evidence.t0, 1e-3)

    def x(t: float) -> float:
        return LABEL_W + (t - evidence.t0) / span * n * CROP_W

    speech = af.envelope(evidence.envelope_db)  # silence flat, not the scale's range
    bands = [("mouth opening", evidence.frame_times, evidence.opening),
             ("sound, as recorded", evidence.envelope_times, speech),
             (f"sound moved {evidence.offset_ms:+.0f} ms", evidence.moved_envelope_times(),
              speech)]
    for row, (label, times, values) in enumerate(bands):
        top = CROP_H + 4 + row * ROW_H
        draw.line([(LABEL_W, top + ROW_H - 2), (width, top + ROW_H - 2)], fill=200)
        draw.text((4, top + ROW_H // 2 - 6), label, fill=0)
        inside = (times >= evidence.t0) & (times <= evidence.t1) & np.isfinite(values)
        if inside.sum() < 2:
            continue
        v = values[inside]
        lo, hi = (np.nanmin(values[np.isfinite(values)]), np.nanmax(values[np.isfinite(values)]))
        scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
        points = [(x(t), top + (ROW_H - 4) * (1 - s)) for t, s in zip(times[inside], scaled,
                                                                      strict=True)]
        draw.line(points, fill=0, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def thumbnail_uri(grey: np.ndarray) -> str:
    """A small grey picture (a face) as an inline PNG: a couple of kB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG", optimize=True)
    return data_uri(buffer.getvalue())
