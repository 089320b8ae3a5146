"""Mean luma of a frame: the whole feature the flash detector needs."""

from __future__ import annotations

import av
import numpy as np

# About this many whole rows, evenly spaced (contiguous memory; striding across
# columns costs more than it saves): the mean of a full-screen flash is unchanged,
# and the cost stays ~0.01 ms whatever the resolution, which keeps `check` close
# to bare decode speed.
ROWS = 48

_EIGHT_BIT_LUMA_FIRST = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21",
    "gray", "yuv411p", "yuv440p", "yuva420p",
}
_HIGH_BIT_DEPTH = {"10le": 4.0, "12le": 16.0}


class LumaFeaturizer:
    """frame -> array([mean luma on an 8-bit scale]); float32, shape (1,)."""

    shape: tuple[int, ...] = (1,)
    dtype = np.float32

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        return np.array([mean_luma(frame)], np.float32)


def mean_luma(frame: av.VideoFrame) -> float:
    """Mean of the luma plane read in place, without converting the whole frame."""
    name = frame.format.name
    if name in _EIGHT_BIT_LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return _mean(rows[: frame.height : _step(frame.height), : frame.width])
    for suffix, scale in _HIGH_BIT_DEPTH.items():
        if name.startswith("yuv") and name.endswith(suffix):
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint16).reshape(-1, plane.line_size // 2)
            return _mean(rows[: frame.height : _step(frame.height), : frame.width]) / scale
    gray = frame.reformat(format="gray").to_ndarray()
    return _mean(gray[:: _step(frame.height)])


def _step(height: int) -> int:
    return max(1, height // ROWS)


def _mean(pixels: np.ndarray) -> float:
    # row sums fit uint32 (7680 px x 65535 < 2**32); twice as fast as a uint64 or
    # float64 reduction over the whole array

    return float(pixels.sum(axis=1, dtype=np.uint32).sum(dtype=np.uint64)) / pixels.size
