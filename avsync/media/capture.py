"""A local capture source: a camera through PyAV, a microphone through sounddevice.

    capture:?video=/dev/video0&audio=default
    capture:?video=/dev/video0&format=v4l2&size=1280x720&fps=25&audio=2

Camera and microphone are two devices with two clocks, so both are stamped on one:
time.monotonic() at capture. Video frames take their arrival time; audio blocks
take PortAudio's ADC time of their first sample, moved onto the monotonic clock
(arrival time when the driver reports none). What the monitor then measures is the
A/V offset of the capture chain itself, device latencies included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import av
import numpy as np

from avsync.errors import BadInputError
from avsync.media.rings import AVRings
from avsync.media.sources import ANALYSIS_RATE, Featurizer, ProducerThread, _ffmpeg_reason
from avsync.records import AudioInfo, MediaInfo, SourceStats, VideoInfo

SCHEME = "capture:"
BLOCK_S = 0.05  # microphone block length


def is_capture(url: str) -> bool:
    return url.startswith(SCHEME)


@dataclass(frozen=True)
class CaptureSpec:
    video: str
    video_format: str = "v4l2"
    video_options: dict[str, str] = field(default_factory=dict)
    audio_device: str | int | None = None  # None: PortAudio's default input


def parse_capture_url(url: str) -> CaptureSpec:
    query = dict(parse_qsl(urlsplit(url).query))
    if "video" not in query:
        raise BadInputError(f"{url}: give the camera, e.g. capture:?video=/dev/video0")
    options = {}
    if "size" in query:
        options["video_size"] = query["size"]
    if "fps" in query:
        options["framerate"] = query["fps"]
    audio = query.get("audio")
    device: str | int | None = None if audio in (None, "", "default") else (
        int(audio) if audio.isdigit() else audio)
    return CaptureSpec(query["video"], query.get("format", "v4l2"), options, device)


class CaptureInput:
    """Opened camera + microphone; `producer()` makes the thread that reads them."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        import sounddevice as sd  # imported here: PortAudio is needed for capture only

        self.spec = parse_capture_url(url)
        self.url = url
        try:
            self.container = av.open(self.spec.video, format=self.spec.video_format,
                                     options=self.spec.video_options, timeout=timeout_s)
        except av.FFmpegError as err:
            raise BadInputError(f"{self.spec.video}: {_ffmpeg_reason(err)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise BadInputError(f"{self.spec.video}: no video from this device")
        self.video = self.container.streams.video[0]
        try:
            device = sd.query_devices(self.spec.audio_device, kind="input")
        except (ValueError, sd.PortAudioError) as err:
            self.container.close()
            raise BadInputError(f"microphone {self.spec.audio_device or 'default'}: {err}") \
                from None
        self.audio = None  # no PyAV audio stream: the microphone is not in the container
        ctx = self.video.codec_context
        rate = self.video.average_rate
        self.info = MediaInfo(
            url=url, format_name=f"capture ({self.spec.video_format} + portaudio)",
            duration_s=None,
            video=VideoInfo(ctx.name, ctx.width, ctx.height, float(rate) if rate else None),
            audio=AudioInfo("pcm (portaudio)", ANALYSIS_RATE, 1),
        )
        self.device_name = device["name"]

    def producer(self, rings: AVRings, featurizer: Featurizer, **_) -> CaptureProducer:
        return CaptureProducer(self, rings, featurizer)

    def close(self) -> None:
        self.container.close()


class CaptureProducer(ProducerThread):
    """Reads the camera on its thread; PortAudio calls back with the microphone."""

    def __init__(self, capture: CaptureInput, rings: AVRings, featurizer: Featurizer) -> None:
        super().__init__(rings, featurizer, "capture")
        self.capture = capture
        self._t0 = time.monotonic()
        self._frames = self._samples = self._errors = 0

    @property
    def stats(self) -> SourceStats:
        return SourceStats(video_frames=self._frames, audio_samples=self._samples,
                           decode_errors=self._errors, video_dropped=self.rings.video.dropped,
                           audio_dropped_samples=self.rings.audio.dropped,
                           audio_gap_samples=self.rings.audio.gap_samples)

    def _read(self) -> None:
        import sounddevice as sd

        # int16: what every capture driver delivers natively (ALSA plugins included)
        with sd.InputStream(samplerate=ANALYSIS_RATE, channels=1, dtype="int16",
                            blocksize=int(BLOCK_S * ANALYSIS_RATE), latency="high",
                            device=self.capture.spec.audio_device,
                            callback=self._on_audio):
            self._read_video()

    def _read_video(self) -> None:
        for packet in self.capture.container.demux(self.capture.video):
            if self._stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self._errors += 1
                continue
            for frame in frames:
                t = time.monotonic() - self._t0
                self.rings.push_video(t, self.featurizer(frame))
                self._frames += 1
        self.ended_early = "the camera stopped sending frames"

    def _on_audio(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        now = time.monotonic() - self._t0
        adc, current = time_info.inputBufferAdcTime, time_info.currentTime
        # the first sample's capture time: PortAudio's ADC time if the driver gives one
        t = now - (current - adc) if adc > 0 and current > 0 else now - frames / ANALYSIS_RATE
        t = self._audio_time(t, frames / ANALYSIS_RATE)  # callback jitter is no clock change
        self.rings.push_audio(t, indata[:, 0].astype(np.float32) / 32768.0)
        self._samples += frames
