"""Test media with a known truth: flash/beep test signals.

A white flash frame and a tone burst mark each event, one event every ``period_s``.
The tone's onset is placed analytically (not rounded to a sample), so the truth is
exact: beep_time = flash_time - offset(flash_time), where offset(t) = offset_ms +
drift_ppm * 1e-6 * t. Positive offset: the audio leads (beep before flash); positive
drift: the audio clock runs fast, so the audio leads more and more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.errors import UsageError

# Luma of limited-range ("TV") black and white, as broadcast video carries them.
BLACK_Y, WHITE_Y, GREY_UV = 16, 235, 128

VIDEO_CODECS = {
    "h264": "libx264", "hevc": "libx265", "h265": "libx265", "mpeg2": "mpeg2video",
    "mpeg4": "mpeg4", "vp9": "libvpx-vp9", "av1": "libsvtav1", "prores": "prores",
}
AUDIO_CODECS = {
    "aac": "aac", "mp2": "mp2", "mp3": "libmp3lame", "opus": "libopus", "ac3": "ac3",
    "pcm": "pcm_s16le",
}
_NTSC_RATES = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001),
               "59.94": Fraction(60000, 1001), "47.952": Fraction(48000, 1001)}


def parse_fps(text: str | float | Fraction) -> Fraction:
    """'25' -> 25, '29.97' -> 30000/1001 (the broadcast rate, not 2997/100)."""
    key = str(text)
    if key in _NTSC_RATES:
        return _NTSC_RATES[key]
    try:
        fps = Fraction(key).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"frame rate {text!r} is not a number (e.g. 25 or 29.97)") from None
    if not 1 <= fps <= 240:
        raise UsageError(f"frame rate {text} is out of range 1..240")
    return fps


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720); both even, as 4:2:0 video needs."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 1280x720)") from None
    if w < 16 or h < 16 or w % 2 or h % 2 or w > 7680 or h > 4320:
        raise UsageError(f"size {text}: width and height must be even, 16..7680 x 16..4320")
    return w, h


@dataclass(frozen=True)
class TestSignalSpec:
    duration_s: float = 10.0
    fps: Fraction = Fraction(25)
    size: tuple[int, int] = (640, 360)
    offset_ms: float = 0.0
    drift_ppm: float = 0.0
    period_s: float = 3.0  # pairing is unambiguous for |offset| < period / 2
    tone_hz: float = 1000.0
    beep_s: float = 0.1
    sample_rate: int = 48_000
    video_codec: str = "h264"
    audio_codec: str = "aac"
    video_bitrate: int | None = None  # bit/s; None = the codec's quality default
    audio_bitrate: int = 128_000
    vfr: bool = False  # frame durations alternate 0.6/1.4 of the nominal one


def frame_times(spec: TestSignalSpec) -> list[float]:
    """Presentation times of the video frames (regular, or variable with vfr)."""
    step = 1 / spec.fps
    n = math.floor(spec.duration_s * spec.fps)
    if not spec.vfr:
        return [float(i * step) for i in range(n)]
    times, t = [], Fraction(0)
    for i in range(n):
        times.append(float(t))
        t += step * (Fraction(3, 5) if i % 2 else Fraction(7, 5))
    return times


@dataclass(frozen=True)
class TestSignalTruth:
    spec: TestSignalSpec
    flash_times: list[float] = field(default_factory=list)
    beep_times: list[float] = field(default_factory=list)

    @property
    def offsets_ms(self) -> list[float]:
        return [(f - b) * 1e3 for f, b in zip(self.flash_times, self.beep_times, strict=True)]


def plan_events(spec: TestSignalSpec) -> TestSignalTruth:
    """Flash frames and beep onsets of a test signal, before any encoding."""
    if spec.duration_s <= 0:
        raise UsageError("duration must be positive")
    if abs(spec.offset_ms) >= spec.period_s * 500:
        raise UsageError(
            f"offset {spec.offset_ms} ms is ambiguous with a {spec.period_s} s period; "
            f"use a period above {2 * abs(spec.offset_ms) / 1000:.1f} s"
        )
    flashes, beeps = [], []
    drift = spec.drift_ppm * 1e-6
    frames = np.asarray(frame_times(spec))
    t = spec.period_s / 2  # first event: room for the beep of a +-period/2 offset
    while t < spec.duration_s - spec.period_s / 4:
        flash = float(frames[np.argmin(np.abs(frames - t))])  # events sit on frame times
        beep = flash - spec.offset_ms / 1e3 - drift * flash
        if beep >= 0 and beep + spec.beep_s < spec.duration_s:
            flashes.append(float(flash))
            beeps.append(beep)
        t += spec.period_s
    return TestSignalTruth(spec, flashes, beeps)


def tone_bursts(
    t: np.ndarray, onsets: list[float], tone_hz: float, length_s: float, level: float = 0.5
) -> np.ndarray:
    """Sine bursts that start at phase 0 exactly at each onset (sub-sample exact)."""
    out = np.zeros_like(t)
    fade = 0.002  # a 2 ms fade-out avoids a click at the end; the onset stays sharp
    for onset in onsets:
        rel = t - onset
        on = (rel >= 0) & (rel < length_s)
        if not on.any():
            continue
        env = np.clip((length_s - rel[on]) / fade, 0, 1)
        out[on] += level * env * np.sin(2 * math.pi * tone_hz * rel[on])
    return out


def _codec(name: str, table: dict[str, str], kind: str) -> str:
    codec = table.get(name, name)
    if codec not in av.codecs_available:
        known = ", ".join(sorted(table))
        raise UsageError(f"unknown {kind} codec {name!r}; use one of {known}")
    return codec


def _video_stream(container, spec: TestSignalSpec):
    codec = _codec(spec.video_codec, VIDEO_CODECS, "video")
    stream = container.add_stream(codec, rate=spec.fps)
    stream.width, stream.height = spec.size
    stream.pix_fmt = "yuv422p10le" if codec == "prores" else "yuv420p"
    if spec.video_bitrate:
        stream.bit_rate = spec.video_bitrate
    stream.codec_context.gop_size = max(1, round(2 * spec.fps))
    if codec == "libx264":
        stream.options = {"preset": "veryfast"}
    elif codec == "libx265":
        stream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
    elif codec == "libsvtav1":
        stream.options = {"preset": "12"}
    return stream


def _audio_stream(container, spec: TestSignalSpec):
    codec = _codec(spec.audio_codec, AUDIO_CODECS, "audio")
    rate = 48_000 if codec == "libopus" else spec.sample_rate
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "stereo"
    if codec != "pcm_s16le":
        stream.bit_rate = spec.audio_bitrate
    return stream


def _frame_planes(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    planes = np.full((h * 3 // 2, w), GREY_UV, np.uint8)
    planes[:h] = BLACK_Y
    return planes


def write_test_signal(path: str | Path, spec: TestSignalSpec) -> TestSignalTruth:
    """Encode the test signal to ``path`` (container chosen by its extension)."""
    truth = plan_events(spec)
    times = frame_times(spec)
    flash_set = set(truth.flash_times)
    n_frames = len(times)
    # VFR needs a fine time base; constant rate uses 1/fps so players see the rate
    time_base = Fraction(1, 90_000) if spec.vfr else 1 / spec.fps
    w, h = spec.size
    black = _frame_planes(spec.size)
    white = black.copy()
    white[:h] = WHITE_Y
    marker = max(2, h // 24) // 2 * 2
    with av.open(str(path), mode="w") as container:
        vstream = _video_stream(container, spec)
        if spec.vfr:
            vstream.codec_context.time_base = time_base
            vstream.time_base = time_base
        astream = _audio_stream(container, spec)
        rate = astream.codec_context.sample_rate
        chunk = astream.codec_context.frame_size or 1024
        audio_pos = 0
        total_samples = math.floor(spec.duration_s * rate)
        for n, t_frame in enumerate(times):
            if t_frame in flash_set:
                img = white
            else:
                # a marker sweeping across the bottom once a period, for human eyes
                img = black.copy()
                phase = (n / spec.fps / spec.period_s) % 1
                x = int(phase * (w - marker)) // 2 * 2
                img[h - 2 * marker : h - marker, x : x + marker] = WHITE_Y
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts = round(Fraction(t_frame) / time_base) if spec.vfr else n
            frame.time_base = time_base
            if vstream.pix_fmt != "yuv420p":
                frame = frame.reformat(format=vstream.pix_fmt)
            container.mux(vstream.encode(frame))
            # keep the audio up with the picture so the muxer interleaves finely
            t_next = times[n + 1] if n + 1 < n_frames else spec.duration_s
            until = min(total_samples, math.floor(t_next * rate))
            while audio_pos + chunk <= until or (n == n_frames - 1 and audio_pos < until):
                count = min(chunk, total_samples - audio_pos)
                container.mux(astream.encode(_audio_frame(audio_pos, count, rate, truth)))
                audio_pos += count
        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))
    return truth


def _audio_frame(start: int, count: int, rate: int, truth: TestSignalTruth) -> av.AudioFrame:
    spec = truth.spec
    t = (start + np.arange(count)) / rate
    near = [b for b in truth.beep_times if b - 1 < t[0] < b + spec.beep_s + 1]
    mono = tone_bursts(t, near, spec.tone_hz, spec.beep_s).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([mono, mono]), format="fltp", layout="stereo")
    frame.sample_rate = rate
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    return frame
