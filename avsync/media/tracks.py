"""Which audio track to measure when a file has several (a mix, a clean feed, a
commentary, an empty track kept for later): the one whose sound moves like speech.

Speech switches on and off several times a second (syllables) inside 300-3400 Hz;
silence does not move at all and music or room tone moves far less. Each track's
first PROBE_S seconds are decoded and scored by how much its speech-band loudness
varies from one 20 ms frame to the next.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import av
import numpy as np

PROBE_S = 20.0  # the first seconds of every track: enough syllables, little decoding
_FRAME_S = 0.02


@dataclass(frozen=True)
class TrackChoice:
    index: int  # 0-based among the file's audio streams
    count: int  # audio streams in the file
    how: str  # "only", "speech" (chosen by its sound) or "asked" (--audio-track)


def speech_score(samples: np.ndarray, rate: int) -> float:
    """Spread of speech-band loudness over 20 ms frames (dB): 0 for silence."""
    n = int(rate * _FRAME_S)
    frames = len(samples) // n
    if frames < 10:
        return 0.0
    blocks = samples[: frames * n].reshape(frames, n)
    spectrum = np.abs(np.fft.rfft(blocks * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / rate)
    band = spectrum[:, (freqs >= 300) & (freqs <= 3400)].sum(axis=1)
    if band.max() <= 1e-10:
        return 0.0
    level = 10 * np.log10(band + band.max() * 1e-6)  # floor 60 dB under the peak
    return float(np.std(np.diff(level)))


def choose_audio_track(container: av.container.InputContainer,
                       asked: int | None = None) -> TrackChoice:
    """The track to measure; `asked` (0-based) wins when given. Rewinds nothing: the
    caller opens the file again to decode (a probe of a file is cheap)."""
    count = len(container.streams.audio)
    if asked is not None:
        if not 0 <= asked < count:
            raise ValueError(f"--audio-track {asked + 1}: the file has {count} audio "
                             f"track{'s' if count != 1 else ''}")
        return TrackChoice(asked, count, "asked")
    if count <= 1:
        return TrackChoice(0, count, "only")
    # a track FFmpeg cannot decode (no codec context) cannot be measured either
    streams = [s for s in container.streams.audio if s.codec_context is not None]
    if not streams:
        return TrackChoice(0, count, "first")
    chunks: dict[int, list[np.ndarray]] = {s.index: [] for s in streams}
    rates = {s.index: s.codec_context.sample_rate or 48_000 for s in streams}
    seen = dict.fromkeys(chunks, 0.0)
    # a damaged file: judge by what was read before the damage
    with contextlib.suppress(av.FFmpegError):
        _probe(container, streams, chunks, seen)
    scores = [speech_score(np.concatenate(chunks[s.index]) if chunks[s.index]
                           else np.zeros(0, np.float32), rates[s.index]) for s in streams]
    best = streams[int(np.argmax(scores))]
    return TrackChoice(list(container.streams.audio).index(best), count, "speech")


def _probe(container, streams, chunks: dict, seen: dict) -> None:
    """Decode the first PROBE_S seconds of every track into chunks (mono)."""
    for packet in container.demux(*streams):
        if packet.size == 0:
            continue
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        for frame in frames:
            mono = frame.to_ndarray().astype(np.float32)
            if not frame.format.is_planar:
                mono = mono.reshape(-1, len(frame.layout.channels)).T
            chunks[packet.stream.index].append(mono.mean(axis=0))
            seen[packet.stream.index] += frame.samples / (frame.sample_rate or 1)
        # every track probed, or one far past the probe (the others may have ended)
        if min(seen.values()) >= PROBE_S or max(seen.values()) >= 3 * PROBE_S:
            return
