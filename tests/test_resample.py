"""Audio to mono 16 kHz: both paths keep media time to a fraction of a sample."""

import av
import numpy as np
import pytest

from avsync.estimate.pattern import BeepDetector
from avsync.media.resample import AudioToMono
from avsync.synth import tone_bursts

CHANNELS = {"mono": 1, "stereo": 2, "5.1": 6}


def _convert(rate: int, fmt: str, layout: str, x: np.ndarray, t0: float, block: int = 1024):
    conv = AudioToMono(16_000)
    out = []
    nch = CHANNELS[layout]
    for i in range(0, len(x), block):
        part = x[i : i + block]
        if fmt in ("fltp", "s16p"):
            arr = np.repeat(part[None], nch, 0)
        else:
            arr = np.repeat(part[:, None], nch, 1).reshape(1, -1)
        if fmt.startswith("s16"):
            arr = (arr * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
        frame.sample_rate = rate
        out += conv(frame, t0 + i / rate)
    return out + conv.flush()


@pytest.mark.parametrize("rate", [48_000, 44_100, 32_000, 16_000])
@pytest.mark.parametrize("fmt, layout", [("fltp", "stereo"), ("s16", "stereo"),
                                         ("flt", "mono"), ("fltp", "5.1")])
def test_time_and_level_survive_conversion(rate, fmt, layout):
    onsets = [1.0 + 7 / (3 * rate), 2.5123456]
    t = np.arange(4 * rate) / rate
    x = tone_bursts(t, onsets, 1000.0, 0.1).astype(np.float32)
    blocks = _convert(rate, fmt, layout, x, t0=10.0)
    # blocks are contiguous on the 16 kHz grid, starting at the first input sample
    assert blocks[0][0] == pytest.approx(10.0, abs=1e-9)
    for (t_a, a), (t_b, _) in zip(blocks, blocks[1:], strict=False):
        assert t_b == pytest.approx(t_a + len(a) / 16_000, abs=1e-9)
    mono = np.concatenate([b for _, b in blocks])
    assert len(mono) == pytest.approx(4 * 16_000, abs=2)
    found = BeepDetector(16_000)(mono, blocks[0][0])
    assert np.abs(np.array(found) - 10.0 - np.array(onsets)).max() < 0.05e-3
    if layout != "5.1":  # mono and stereo come out at one level, whichever path
        expected = 0.5 if layout == "mono" else 0.5 * np.sqrt(2)
        assert np.abs(mono).max() == pytest.approx(expected, rel=0.02)


def test_a_hole_in_the_input_restarts_the_grid_at_the_new_time():
    x = np.zeros(48_000, np.float32)
    conv = AudioToMono(16_000)
    out = []
    for i, t in enumerate([0.0, 1024 / 48_000, 5.0]):  # third block 5 s later
        frame = av.AudioFrame.from_ndarray(x[None, :1024], format="fltp", layout="mono")
        frame.sample_rate = 48_000
        out += conv(frame, t)
        assert i < 2 or out[-1][0] <= 5.0
    out += conv.flush()
    assert any(t == pytest.approx(5.0, abs=1e-9) for t, _ in out)
