"""The shipped sync model, run by onnxruntime: the neural scorer of the lip-sync path.

A window (3 s by default) is cut into passes of SPEC.frames grid steps (0.6 s); each
pass scores the shifts of one block of candidate offsets, and ranges wider than a
block (up to +-2 s) take several blocks, each with its audio moved by whole blocks.
A window's curve is the mean over its passes of the model's score per offset (scores
of different shifts are computed independently, so they are comparable).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from avsync.model import inputs
from avsync.model.spec import SPEC

if TYPE_CHECKING:
    from avsync.lipsync import FaceTrack
    from avsync.records import Window

WEIGHTS = "sync.onnx"
CARD = "CARD.md"
CALIBRATION = "calibration.json"


def weights_path(name: str = WEIGHTS) -> Path | None:
    """A shipped weights file (the ONNX model by default), or None if this install lacks it."""
    path = resources.files("avsync.model") / "weights" / name
    return Path(str(path)) if path.is_file() else None


@cache
def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one pass is ~1.5 ms; threads cost more than they save
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _calibration(path: Path) -> dict:
    file = path.with_name(CALIBRATION)
    return json.loads(file.read_text()) if file.exists() else {}


class ModelScorer:
    """Scores a window's candidate offsets with the ONNX sync model."""

    method = "lipsync-model"
    # the mesh on every 2nd frame halves the front end's cost (tools/bench.py lipsync);
    # training caches its features through the same front end
    landmark_every = SPEC.landmark_every

    def __init__(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else weights_path()
        if path is None:
            raise FileNotFoundError("no sync model in this install (avsync/model/weights)")
        self.path = path
        self.session = _session(str(path))
        calib = _calibration(path)
        # prominence (score units) that maps to confidence 0.63 / below which a window
        # is low confidence: fitted on speakers the model was not trained on
        # (calibration.json; how: CARD.md)
        self.confidence_scale = float(calib.get("confidence_scale", 1.0))
        self.min_prominence = float(calib.get("min_prominence", 0.5))

    def candidate_offsets(self, max_offset_s: float, fps: float) -> np.ndarray:
        k = int(round(max_offset_s / SPEC.step_s))
        return np.arange(-k, k + 1) * SPEC.step_s  # the model's 40 ms grid, any fps

    def audio_margin_s(self, max_offset_s: float) -> float:
        return max_offset_s + (SPEC.band + 2) * SPEC.step_s

    def scores(self, track: FaceTrack, window: Window, offsets: np.ndarray) -> np.ndarray:
        steps = np.round(offsets / SPEC.step_s).astype(int)
        centres = _block_centres(int(steps.min()), int(steps.max()))
        total, count = np.zeros(len(steps)), np.zeros(len(steps))
        span = SPEC.frames * SPEC.step_s
        audio_end = window.audio_t0 + len(window.audio) / window.audio_rate
        for t_start in np.arange(window.t0, window.t1 - span + 1e-6, span):
            idx, near = inputs.pick_frames(track.times, inputs.grid_times(t_start))
            if not near.all():
                continue  # the face was lost inside this pass
            # a pass counts only if the window holds the audio of every offset: passes
            # differ in score level, so each offset must average the same passes
            lo, hi = inputs.audio_span(float(t_start), steps * SPEC.step_s)
            if lo.min() < window.audio_t0 - 1e-6 or hi.max() > audio_end + 1e-6:
                continue
            mouth = inputs.mouth_input(track.mouth[idx])[None]
            for c in centres:
                shift = steps - c + SPEC.max_shift  # position of each offset in this block
                inside = (shift >= 0) & (shift < SPEC.shifts)
                if not inside.any():
                    continue
                mel = inputs.audio_input(window.audio, window.audio_t0, float(t_start), c)
                out = self.session.run(None, {"mouth": mouth, "mel": mel[None]})[0][0]
                total[inside] += out[shift[inside]]
                count[inside] += 1
        # no pass with all its audio (the very start or end of a stream): no estimate
        return np.divide(total, count, out=np.full(len(steps), np.nan), where=count > 0)

    def describe(self) -> dict:
        return {"model": self.path.name, "passes_s": SPEC.frames * SPEC.step_s}


def _block_centres(lo: int, hi: int) -> list[int]:
    """Centres (in steps) of the blocks of 2*max_shift+1 shifts that cover lo..hi."""
    k, width = SPEC.max_shift, SPEC.shifts
    centres = [0]
    while centres[-1] + k < hi:
        centres.append(centres[-1] + width)
    c = 0
    while c - k > lo:
        c -= width
        centres.append(c)
    return sorted(centres)
