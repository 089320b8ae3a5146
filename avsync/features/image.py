"""Square crops of a decoded frame, resampled, without converting the whole frame.

Converting a 720p frame to RGB costs ~3 ms; the models need only a 192x192 patch, so
crops are sampled straight from the Y, U and V planes (nearest neighbour) and only
those pixels are converted. Formats other than 8-bit 4:2:0 take the slow path once
per frame.
"""

from __future__ import annotations

import av
import numpy as np

_YUV420 = {"yuv420p", "yuvj420p"}
_FULL_RANGE = {"yuvj420p"}


class FrameImage:
    """One frame's pixels, addressable in frame coordinates (x right, y down)."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self.width = frame.width
        self.height = frame.height
        fmt = frame.format.name
        if fmt in _YUV420:
            self._y = _plane(frame, 0, frame.height)
            self._u = _plane(frame, 1, (frame.height + 1) // 2)
            self._v = _plane(frame, 2, (frame.height + 1) // 2)
            self._full_range = fmt in _FULL_RANGE
            self._rgb = None
        else:
            self._rgb = frame.to_ndarray(format="rgb24")
            self._y = None

    def _grid(self, x0: float, y0: float, w: float, h: float, out_w: int, out_h: int):
        xs = x0 + (np.arange(out_w) + 0.5) * (w / out_w)
        ys = y0 + (np.arange(out_h) + 0.5) * (h / out_h)
        xi = np.floor(xs).astype(np.int64)
        yi = np.floor(ys).astype(np.int64)
        inside_x = (xi >= 0) & (xi < self.width)
        inside_y = (yi >= 0) & (yi < self.height)
        return np.clip(xi, 0, self.width - 1), np.clip(yi, 0, self.height - 1), inside_x, inside_y

    def gray(self, x0: float, y0: float, w: float, h: float, out_w: int, out_h: int) -> np.ndarray:
        """Luma of the box (x0, y0, w, h) resampled to out_h x out_w uint8; 0 outside."""
        xi, yi, ix, iy = self._grid(x0, y0, w, h, out_w, out_h)
        if self._y is not None:
            out = self._y[yi[:, None], xi[None, :]]
        else:
            rgb = self._rgb[yi[:, None], xi[None, :]].astype(np.float32)
            out = (rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        return np.where(iy[:, None] & ix[None, :], out, 0).astype(np.uint8)

    def rgb(self, x0: float, y0: float, w: float, h: float, out_w: int, out_h: int) -> np.ndarray:
        """RGB float32 in 0..1 of the box, resampled to (out_h, out_w, 3); 0 outside."""
        xi, yi, ix, iy = self._grid(x0, y0, w, h, out_w, out_h)
        if self._y is None:
            rgb = self._rgb[yi[:, None], xi[None, :]].astype(np.float32) / 255.0
        else:
            y = self._y[yi[:, None], xi[None, :]].astype(np.float32)
            u = self._u[(yi // 2)[:, None], (xi // 2)[None, :]].astype(np.float32) - 128.0
            v = self._v[(yi // 2)[:, None], (xi // 2)[None, :]].astype(np.float32) - 128.0
            if not self._full_range:  # limited ("TV") range: 16..235 luma, 16..240 chroma
                y = (y - 16.0) * (255.0 / 219.0)
                u *= 255.0 / 224.0
                v *= 255.0 / 224.0
            # BT.601 matrix: what SD and most web video carry; on HD (BT.709) the colour
            # error is small and the models see a face either way
            rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
            rgb = np.clip(rgb / 255.0, 0.0, 1.0)
        mask = (iy[:, None] & ix[None, :])[..., None]
        return np.where(mask, rgb, 0.0).astype(np.float32)


def _plane(frame: av.VideoFrame, index: int, rows: int) -> np.ndarray:
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows]
