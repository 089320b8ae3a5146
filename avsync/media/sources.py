"""Open an input with PyAV and decode it on a producer thread into AVRings.

Decoding is the producer's only job: each video frame is reduced to a small feature
array (the featurizer), each audio block to mono float32 at the analysis rate, and
both are stamped with media time by one MediaClock before they enter the rings. With
feature_thread the featurizer runs on a thread of its own (media.stage), so a file's
decode and its face front end overlap.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Protocol

import av
import numpy as np

from avsync.errors import BadInputError
from avsync.media.clock import MPEGTS_PTS_BITS, ClockEvent, MediaClock, pts_to_seconds
from avsync.media.redact import redact_url, scrub
from avsync.media.resample import AudioToMono
from avsync.media.rings import AVRings
from avsync.media.stage import FeatureStage
from avsync.media.tracks import TrackChoice, choose_audio_track
from avsync.media.urls import is_url, local_path, shown_input
from avsync.records import AudioInfo, MediaInfo, SourceStats, VideoInfo

log = logging.getLogger(__name__)

ANALYSIS_RATE = 16_000  # Hz; what every audio feature downstream is computed at
# Audio PTS within this of the running sample count are rounding (Matroska stores
# milliseconds: +-0.5 ms on every block); follow the sample count there, so blocks
# stay contiguous. Larger deviations are real gaps or overlaps and follow the PTS.
AUDIO_PTS_JITTER_S = 0.0025
_WRAPPING_FORMATS = ("mpegts", "hls", "mpegtsraw")
# FFmpeg frame+slice threads: decode() returns while frames decode in the background,
# so our per-frame Python work overlaps decoding (measured faster than slice-only
# threads for `check`, though slice-only is faster for a bare decode loop).
THREAD_TYPE = "AUTO"
# The analysis reads grey mouth regions and frame brightness, not a picture to look at:
# the decoder may skip its in-loop deblocking filter (H.264, HEVC; other decoders ignore
# it), which takes a share of the decode's CPU (issue 22: tools/bench.py lipsync).
# Deblocking smooths block edges by a grey level or two; the mean luma of a flash frame
# and the lips' movement are the same.
VIDEO_DECODER_OPTIONS = {"skip_loop_filter": "all"}


class Featurizer(Protocol):
    """Reduces a decoded video frame to the small array the analysis needs."""

    shape: tuple[int, ...]
    dtype: type

    def __call__(self, frame: av.VideoFrame) -> np.ndarray: ...




def _check_local_file(path: str) -> None:
    if not os.path.exists(path):
        raise BadInputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise BadInputError(f"{path}: is a directory, not a media file")
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):  # its size says nothing: /dev/zero and a pipe read "0"
        kind = ("pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
                else "device")
        raise BadInputError(f"{path}: is a {kind}, not a media file (give a file, or a "
                            "live stream's URL)")
    if os.path.getsize(path) == 0:
        raise BadInputError(f"{path}: file is empty (0 bytes)")


def _ffmpeg_reason(err: av.FFmpegError, timeout_s: float | None = None) -> str:
    reason = err.strerror or str(err)
    # PyAV's interrupt callback ends a blocked call with "Immediate exit requested":
    # to the user that is a server that accepted and never sent anything
    if timeout_s is not None and (isinstance(err, av.ExitError) or "Immediate exit" in reason):
        return f"timed out after {timeout_s:g} s waiting for data"
    if "moov atom not found" in str(err) or "Invalid data" in reason:
        return "not a readable media file (corrupt, truncated or not media)"
    return reason.rstrip(".")


@dataclass(frozen=True)
class OpenedInput:
    container: av.container.InputContainer
    video: av.VideoStream | None
    audio: av.AudioStream | None
    info: MediaInfo
    timeout_s: float | None = None  # a URL's read timeout: said when a read gives up


def open_input(
    path: str,
    options: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    audio_track: int | None = None,
) -> OpenedInput:
    """Open a file or URL and pick its first video stream and an audio stream: the
    `audio_track` (0-based) asked for, else in a file with several the one with speech
    (avsync.media.tracks), else the first.

    Raises BadInputError with a one-line reason; credentials never appear in it.
    """
    shown = shown_input(path)
    if not is_url(path):
        _check_local_file(local_path(path))
    started = time.monotonic()
    try:
        container = av.open(path, mode="r", options=options or {}, timeout=timeout_s)
    except av.FFmpegError as err:
        waited = time.monotonic() - started
        # a silent server makes the demuxer give up on "invalid data" at the deadline
        timed_out = is_url(path) and waited >= 0.9 * timeout_s
        reason = (f"timed out after {timeout_s:g} s waiting for data" if timed_out
                  else _ffmpeg_reason(err))
        if not is_url(path) and ("End of file" in reason or "Input/output" in reason):
            reason = "not a readable media file (it ends inside its headers: truncated?)"
        raise BadInputError(f"{shown}: {scrub(reason, path)}") from None
    except UnicodeDecodeError:  # PyAV decodes the container's metadata as text
        raise BadInputError(f"{shown}: not a readable media file (corrupt metadata)") from None
    except OSError as err:
        raise BadInputError(f"{shown}: {scrub(str(err.strerror or err), path)}") from None
    video = container.streams.video[0] if container.streams.video else None
    choice = _audio_choice(path, container, audio_track, timeout_s)
    audio = container.streams.audio[choice.index] if container.streams.audio else None
    if video is None and audio is None:
        container.close()
        raise BadInputError(f"{shown}: no audio or video stream")
    duration = container.duration / av.time_base if container.duration else None
    info = MediaInfo(
        url=shown,
        format_name=container.format.name,
        duration_s=duration,
        video=_video_info(video) if video else None,
        audio=_audio_info(audio, choice) if audio else None,
    )
    return OpenedInput(container, video, audio, info, timeout_s if is_url(path) else None)


def _video_info(stream: av.VideoStream) -> VideoInfo:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    ctx = stream.codec_context  # None when FFmpeg has no decoder for the stream
    return VideoInfo(
        codec=ctx.name if ctx is not None else "unknown",
        width=ctx.width if ctx is not None else 0,
        height=ctx.height if ctx is not None else 0,
        fps=float(rate) if rate else None,
    )


def _audio_choice(path: str, container, asked: int | None, timeout_s: float) -> TrackChoice:
    count = len(container.streams.audio)
    if asked is None and (count <= 1 or is_url(path)):  # a live URL cannot be rewound
        return TrackChoice(0, count, "only" if count <= 1 else "first")
    try:
        if asked is not None:
            return choose_audio_track(container, asked)
        st = os.stat(local_path(path))
        return _speech_track(path, st.st_size, st.st_mtime_ns, timeout_s)
    except (av.FFmpegError, OSError):  # the probe failed: measure the first, as before
        return TrackChoice(0, count, "first")
    except ValueError as err:
        container.close()
        raise BadInputError(f"{redact_url(path)}: {err}") from None


@lru_cache(maxsize=64)
def _speech_track(path: str, size: int, mtime_ns: int, timeout_s: float) -> TrackChoice:
    """The track with speech, decided once per file version (check opens a file up to
    three times: probe, test-signal pass, lip-sync pass)."""
    with av.open(path, mode="r", timeout=timeout_s) as probe:
        return choose_audio_track(probe)


def _audio_info(stream: av.AudioStream, choice: TrackChoice) -> AudioInfo:
    ctx = stream.codec_context  # None when FFmpeg has no decoder for the stream
    if ctx is None:
        return AudioInfo(codec="unknown", sample_rate=0, channels=0, track=choice.index + 1,
                         tracks=choice.count, chosen_by=choice.how)
    return AudioInfo(codec=ctx.name, sample_rate=ctx.sample_rate, channels=ctx.channels,
                     track=choice.index + 1, tracks=choice.count, chosen_by=choice.how)


def _log_clock_event(source: str, event: ClockEvent) -> None:
    # the evidence when a connection reads far off (a soak once read 1,440 ms)
    log.info("%s: %s", source, event.describe())


class ProducerThread:
    """What every producer shares: its thread, stop/join, the rings it fills, and the
    smoothing of audio block times.

    It never raises into the caller: a failure ends the input, closes the rings and is
    kept in ``error``. Subclasses implement ``_read`` and ``stats``.
    """

    def __init__(self, rings: AVRings, featurizer: Featurizer, name: str) -> None:
        self.rings = rings
        self.featurizer = featurizer
        self.name = name
        self.error: Exception | None = None
        self.ended_early: str | None = None  # reason when the input stopped mid-way
        self._stop = threading.Event()
        self._audio_expected_t: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"avsync-producer-{name}",
                                        daemon=True)

    def start(self) -> ProducerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.rings.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._read()
        except Exception as err:  # kept for the consumer; this thread must not die loudly
            self.error = err
        finally:
            self.rings.close()

    def _read(self) -> None:
        raise NotImplementedError

    def _audio_time(self, t: float, duration_s: float) -> float:
        """Snap a block's time onto the end of the previous block when they differ by
        jitter only (timestamp rounding, callback scheduling), not a clock change."""
        if (self._audio_expected_t is not None
                and abs(t - self._audio_expected_t) <= AUDIO_PTS_JITTER_S):
            t = self._audio_expected_t
        self._audio_expected_t = t + duration_s
        return t


class Producer(ProducerThread):
    """One thread that demuxes and decodes an OpenedInput into AVRings."""

    def __init__(
        self,
        opened: OpenedInput,
        rings: AVRings,
        featurizer: Featurizer,
        name: str = "source",
        realtime: bool = False,
        feature_thread: bool = False,
    ) -> None:
        super().__init__(rings, featurizer, name)
        self.opened = opened
        # featurize on a thread of its own (media.stage): a file's decode and face
        # front end then share both cores; off for the monitor, whose streams do
        self.feature_thread = feature_thread
        self._stage: FeatureStage | None = None
        self.read_timeout_s = opened.timeout_s
        self.realtime = realtime  # pace a file at media speed, as a live source arrives
        self._wall_origin: float | None = None
        start = opened.container.start_time
        wraps = any(f in opened.info.format_name.split(",") for f in _WRAPPING_FORMATS)
        self.clock = MediaClock(
            origin_s=start / av.time_base if start is not None else None,
            wrap_bits=MPEGTS_PTS_BITS if wraps else None,
            # not a bound method: a clock -> producer reference would make a cycle, and
            # each ended connection's rings and decoders would wait for the cyclic GC
            # (a 60-minute soak's RSS climbed ~45 MB a minute so)
            on_event=partial(_log_clock_event, name),
        )
        self._video_frames = self._audio_samples = self._decode_errors = 0

    @property
    def stats(self) -> SourceStats:
        return SourceStats(
            video_frames=self._video_frames,
            audio_samples=self._audio_samples,
            decode_errors=self._decode_errors,
            timestamp_jumps=self.clock.jumps,
            timestamp_strays=self.clock.strays,
            video_dropped=self.rings.video.dropped,
            audio_dropped_samples=self.rings.audio.dropped,
            audio_gap_samples=self.rings.audio.gap_samples,
        )

    # -- the thread ----------------------------------------------------------------
    def _read(self) -> None:
        opened = self.opened
        streams = [s for s in (opened.video, opened.audio) if s is not None]
        threads = os.environ.get("AVSYNC_DECODE_THREADS", "")
        for stream in streams:
            stream.thread_type = THREAD_TYPE
            if threads.isdigit() and stream.codec_context is not None:
                # batch workers: one core each, so no decoder threads of their own
                stream.codec_context.thread_count = int(threads)
        if opened.video is not None and opened.video.codec_context is not None:
            ctx = opened.video.codec_context  # applied when the decoder opens
            ctx.options = {**ctx.options, **VIDEO_DECODER_OPTIONS}
        video_clock = opened.video and self.clock.stream("video", opened.video.time_base)
        audio_clock = opened.audio and self.clock.stream("audio", opened.audio.time_base)
        audio_out = AudioToMono(ANALYSIS_RATE)
        if self.feature_thread and opened.video is not None:
            self._stage = FeatureStage(self.featurizer, self.rings.push_video, self._stop,
                                       self.name)
        try:
            self._demux(streams, video_clock, audio_clock, audio_out)
        finally:
            if self._stage is not None:
                stage, self._stage = self._stage, None
                stage.finish()  # the frames it holds reach the rings before they close

    def _demux(self, streams, video_clock, audio_clock, audio_out: AudioToMono) -> None:
        opened = self.opened
        packets = opened.container.demux(*streams)
        while not self._stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as err:
                # the demuxer cannot go on (truncated or broken file, dropped connection)
                self.ended_early = _ffmpeg_reason(err, self.read_timeout_s)
                break
            except IndexError:  # PyAV: a damaged MPEG-TS packet names a stream it lacks
                self.ended_early = "damaged container (a packet of an unknown stream)"
                break
            if packet.is_corrupt:
                self._decode_errors += 1
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self._decode_errors += 1
                continue
            is_video = packet.stream is opened.video
            for frame in frames:
                if frame.pts is None:
                    continue
                if is_video:
                    self._on_video(frame, video_clock)
                else:
                    self._on_audio(frame, audio_clock, audio_out)
        if opened.audio is not None:
            for t, samples in audio_out.flush():
                self.rings.push_audio(t, samples)
                self._audio_samples += len(samples)

    def _on_video(self, frame: av.VideoFrame, clock) -> None:
        tb = frame.time_base
        duration = pts_to_seconds(frame.duration or 0, tb) if tb else 0.0
        placed = clock(frame.pts, duration)
        if placed is None:  # held until its stream shows a jump, or a stray
            return
        t, jumped = placed
        if jumped:
            self.rings.mark_discontinuity(t)
        self._pace(t)
        if self._stage is not None:
            self._stage.put(t, frame)
        else:
            self.rings.push_video(t, self.featurizer(frame))
        self._video_frames += 1

    def _pace(self, t: float) -> None:
        if not self.realtime:
            return
        now = time.monotonic()
        if self._wall_origin is None:
            self._wall_origin = now - t
        ahead = self._wall_origin + t - now
        if ahead > 0:
            self._stop.wait(ahead)

    def _on_audio(self, frame: av.AudioFrame, clock, audio_out: AudioToMono) -> None:
        placed = clock(frame.pts, frame.samples / frame.sample_rate)
        if placed is None:
            return
        t, jumped = placed
        if jumped:
            self.rings.mark_discontinuity(t)
            self._audio_expected_t = None  # a new segment: nothing to snap onto
        t = self._audio_time(t, frame.samples / frame.sample_rate)
        for t_out, samples in audio_out(frame, t):
            self.rings.push_audio(t_out, samples)
            self._audio_samples += len(samples)


ProgressCallback = Callable[[float], None]
