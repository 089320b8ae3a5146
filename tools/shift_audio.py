"""Make a copy of an in-sync clip with its audio moved by a known offset.

The video stream is copied untouched (no re-encode); the audio is decoded, padded
with silence (audio late, offset < 0) or trimmed (audio leads, offset > 0) at its
start, and written as PCM so no codec delay blurs the truth. Sign convention: offset
> 0 means the audio leads.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def shift_audio(src: str | Path, dst: str | Path, offset_ms: float) -> Path:
    with av.open(str(src)) as inp:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        rate = ain.codec_context.sample_rate
        frames = list(inp.decode(ain))
        chunks = [f.to_ndarray() for f in frames]
        start = frames[0].time or 0.0  # after the decoder dropped any priming samples
    audio = _as_channels_first(chunks, ain)
    n = round(abs(offset_ms) / 1000 * rate)
    if offset_ms > 0:  # audio leads: its content comes n samples earlier
        audio = np.concatenate([audio[:, n:], np.zeros((audio.shape[0], n), np.float32)], 1)
    elif n:
        audio = np.concatenate([np.zeros((audio.shape[0], n), np.float32), audio[:, :-n]], 1)
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    audio = audio[:2]
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("pcm_s16le", rate=rate)
        aout.layout = layout
        audio_packets = []
        for i in range(0, audio.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i : i + 1024]),
                                               format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = round(start * rate) + i
            audio_packets += aout.encode(frame)
        audio_packets += aout.encode(None)
        # written in time order: a file of all its video, then all its audio, makes a
        # reader hold the whole video while it waits for the sound (a ring of a minute
        # overflowed on a 71 s clip)
        queued = iter(audio_packets)
        pending = next(queued, None)
        for packet in inp.demux(vin):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            t = float((packet.dts if packet.dts is not None else packet.pts or 0)
                      * packet.time_base)
            while pending is not None and pending.pts * pending.time_base <= t:
                out.mux(pending)
                pending = next(queued, None)
            packet.stream = vout
            out.mux(packet)
        while pending is not None:
            out.mux(pending)
            pending = next(queued, None)
    return Path(dst)


def _as_channels_first(chunks: list[np.ndarray], stream: av.AudioStream) -> np.ndarray:
    fmt = stream.codec_context.format
    channels = stream.codec_context.channels
    if fmt.is_planar:
        data = np.concatenate(chunks, axis=1)
    else:
        data = np.concatenate([c.reshape(-1, channels).T for c in chunks], axis=1)
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768
    elif data.dtype == np.int32:
        data = data.astype(np.float32) / 2**31
    return data.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="an in-sync clip (video + audio)")
    parser.add_argument("dst", help="the shifted copy: Matroska (.mkv), as PCM audio needs")
    parser.add_argument("offset_ms", type=float, help="> 0: the audio leads; < 0: it is late")
    args = parser.parse_args(argv)
    if Path(args.dst).suffix.lower() != ".mkv":
        parser.error(f"{args.dst}: the copy is Matroska; name it .mkv")
    if not abs(args.offset_ms) < 60_000:
        parser.error(f"offset {args.offset_ms} ms: use less than a minute either way")
    try:
        shift_audio(args.src, args.dst, args.offset_ms)
    except (av.FFmpegError, OSError) as err:
        print(f"shift_audio: error: {args.src}: {getattr(err, 'strerror', None) or err}",
              file=sys.stderr)
        return 3
    except IndexError:
        print(f"shift_audio: error: {args.src}: needs a video and an audio stream",
              file=sys.stderr)
        return 3
    print(f"wrote {args.dst}: audio moved {args.offset_ms:+g} ms "
          f"({'leads' if args.offset_ms > 0 else 'late'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
