"""Everything a live stream may need per frame: mean luma (test signals) and the face
front end's mouth record (lip sync), in one structured record."""

from __future__ import annotations

import av
import numpy as np

from avsync.features.face import FEATURE_DTYPE, MouthFeaturizer
from avsync.features.luma import mean_luma

COMBINED_DTYPE = np.dtype([("luma", np.float32), *FEATURE_DTYPE.descr])


class CombinedFeaturizer:
    shape: tuple[int, ...] = ()
    dtype = COMBINED_DTYPE

    def __init__(self, mouths: MouthFeaturizer | None = None) -> None:
        self.mouths = mouths or MouthFeaturizer()
        self.faces = True  # switched off while a test signal is being measured

    def reset(self) -> None:
        self.mouths.reset()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        record = np.zeros((), COMBINED_DTYPE)
        record["luma"] = mean_luma(frame)
        if self.faces:
            mouth = self.mouths(frame)
            for name in FEATURE_DTYPE.names:
                record[name] = mouth[name]
        return record
