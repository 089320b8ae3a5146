"""The shipped sync model, run by onnxruntime: the neural scorer of the lip-sync path.

A window (3 s by default, or as short as the clip) is scored in passes of SPEC.frames
grid steps (0.6 s); each pass scores every (step, shift) pair of one block of
candidate offsets, and ranges wider than a block (up to +-2 s) take several blocks,
each with its audio moved by whole blocks. Passes sit on a media-time grid, so
overlapping windows share them and each is run once; a window too short for the grid
is cut into passes of its own. Every step scores the candidates whose audio the
window holds, and the window's curve is the mean over its steps of those scores,
centred per step: evidence adds up over steps, as SyncNet-style clip averaging does.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from avsync.errors import UsageError
from avsync.estimate.offset import Curve
from avsync.model import inputs
from avsync.model.spec import SPEC

if TYPE_CHECKING:
    from avsync.lipsync import FaceTrack
    from avsync.records import Window

WEIGHTS = "sync.onnx"
# windows use the media-time pass grid when its passes cover this much of them
GRID_COVER = 0.75
PASS_CACHE = 32  # passes kept for the next windows (a 3 s window holds 5)
CARD = "CARD.md"
CALIBRATION = "calibration.json"


def weights_path(name: str = WEIGHTS) -> Path | None:
    """A shipped weights file (the ONNX model by default), or None if this install lacks it."""
    path = resources.files("avsync.model") / "weights" / name
    return Path(str(path)) if path.is_file() else None


@cache
def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one pass is a few ms; threads cost more than they save
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _calibration(path: Path) -> dict:
    file = path.with_name(CALIBRATION)
    return json.loads(file.read_text()) if file.exists() else {}


class ModelScorer:
    """Scores a window's candidate offsets with the ONNX sync model.

    The window's video is cut into passes of SPEC.frames grid steps (the last one
    overlapping the one before when the window is not a multiple); every step scores
    the candidate offsets whose audio the window holds, centred on their mean
    (centre_steps), and the window's curve is the mean over its steps. The curve's
    weight is the number of steps: the evidence behind it.
    """

    method = "lipsync-model"
    # the mesh on every 2nd frame halves the front end's cost (tools/bench.py lipsync);
    # training caches its features through the same front end
    landmark_every = SPEC.landmark_every
    detect_every = SPEC.detect_every
    min_steps = 10  # steps (0.4 s) an offset must be scored on to be in the curve

    def __init__(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else weights_path()
        if path is None:
            raise FileNotFoundError("no sync model in this install (avsync/model/weights)")
        self.path = path
        try:
            self.session = _session(str(path))
        except Exception as err:  # onnxruntime raises its own types for a bad file
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise UsageError(f"--model {path}: not a loadable ONNX model ({reason})") from None
        names = {i.name for i in self.session.get_inputs()}
        if "mel" not in names or not names & {"mouth", "lips"} or names - {"mouth", "mel",
                                                                             "lips"}:
            raise UsageError(f"--model {path}: not an avsync sync model (its inputs are "
                             f"{', '.join(sorted(names))}; expected mel with mouth, lips "
                             "or both)")
        # what the model's front reads: the mouth crops, the lip contour, or both
        self.reads_crop = "mouth" in names
        self.reads_lips = "lips" in names
        calib = _calibration(path)
        # evidence (prominence x steps) -> confidence (fitted knots; the scale is the
        # one-parameter fallback) and the evidence below which a window is low
        # confidence: fitted on real speakers the model was not trained on
        # (calibration.json; how: CARD.md)
        self.confidence_scale = float(calib.get("confidence_scale", 1.0))
        self.min_prominence = float(calib.get("min_prominence", 0.0))
        knots = np.array(calib.get("confidence_knots") or [], float).reshape(-1, 2)
        knots = knots[knots[:, 0] > 0]  # interpolated in log evidence
        self.confidence_knots = knots if len(knots) else None
        # pass scores by (track, grid pass): a pass's audio lies inside every window
        # that holds the pass (the audio margin), so its scores are the same in each
        self._cache: dict[tuple, np.ndarray] = {}

    def candidate_offsets(self, max_offset_s: float, fps: float) -> np.ndarray:
        k = int(round(max_offset_s / SPEC.step_s))
        return np.arange(-k, k + 1) * SPEC.step_s  # the model's 40 ms grid, any fps

    def audio_margin_s(self, max_offset_s: float) -> float:
        return max_offset_s + (SPEC.margin + 2) * SPEC.step_s

    def scores(self, track: FaceTrack, window: Window, offsets: np.ndarray) -> Curve | None:
        steps = np.round(offsets / SPEC.step_s).astype(int)
        passes = self._grid_passes(track, window) or self._window_passes(track, window)
        if passes is None:
            return None
        lips = track.lips if self.reads_lips else None
        audio_lo = window.audio_t0
        audio_hi = window.audio_t0 + len(window.audio) / window.audio_rate
        total, count, steps_used = np.zeros(len(steps)), np.zeros(len(steps)), 0
        for t_start, frames, keep, grid_pass in passes:
            # a pass's scores hold one row per candidate: the candidates are in the key
            key = None if grid_pass is None else (grid_pass, steps.tobytes())
            out = self._cache.get(key) if key is not None else None
            if out is None:
                out = self._run_pass(track, window, t_start, frames, steps, lips)
                if key is not None:
                    self._remember(key, out)
            ok = inputs.pairs_with_audio(t_start, steps * SPEC.step_s, audio_lo, audio_hi,
                                         SPEC.frames)
            ok &= keep[None, :]
            centred, used = centre_steps(out, ok)
            total += centred.sum(axis=1)
            count += ok.sum(axis=1)
            steps_used += used
        enough = count >= self.min_steps
        if not enough.any() or steps_used == 0:
            return None
        curve = np.where(enough, total / steps_used, np.nan)
        return Curve(offsets, curve, float(steps_used))

    def _grid_passes(self, track: FaceTrack, window: Window) -> list | None:
        """Passes on a media-time grid (every SPEC.frames steps from t = 0) that lie
        inside the window, each scored once and reused by the windows that overlap it:
        with 3 s windows every 1 s, a step was scored three times. None when they would
        cover under GRID_COVER of the window (short windows: _window_passes)."""
        span = SPEC.frames * SPEC.step_s
        first = math.ceil(window.t0 / span - 1e-6)
        stop = math.floor(window.t1 / span + 1e-6)
        if stop <= first or (stop - first) * span < GRID_COVER * (window.t1 - window.t0):
            return None
        passes = []
        for k in range(first, stop):
            t_start = k * span
            grid = t_start + np.arange(SPEC.frames) * SPEC.step_s
            idx, near = inputs.pick_frames(track.times, grid)
            passes.append((t_start, idx, near, (track.track_id, k)))
        if sum(int(near.sum()) for _, _, near, _ in passes) < self.min_steps:
            return None
        return passes

    def _window_passes(self, track: FaceTrack, window: Window) -> list | None:
        """Passes from the window's own start (the last one overlapping the one before):
        for windows too short for the grid; not cached."""
        n = int(np.floor((window.t1 - window.t0) / SPEC.step_s + 1e-6))
        grid = window.t0 + np.arange(n) * SPEC.step_s
        idx, near = inputs.pick_frames(track.times, grid)
        if near.sum() < self.min_steps:
            return None
        passes = []
        for first, new in _passes(n, SPEC.frames):
            pick = np.clip(np.arange(first, first + SPEC.frames), 0, n - 1)  # short: repeat
            keep = np.zeros(SPEC.frames, bool)
            keep[new] = near[pick[new]]
            passes.append((float(window.t0 + first * SPEC.step_s), idx[pick], keep, None))
        return passes

    def _run_pass(self, track: FaceTrack, window: Window, t_start: float, frames: np.ndarray,
                  steps: np.ndarray, lips: np.ndarray | None) -> np.ndarray:
        """(candidates, SPEC.frames) scores of one pass: the crops and/or lip contours of
        `frames` against the audio under every candidate offset (-inf where a block does
        not reach)."""
        feed = {}
        if self.reads_crop:
            feed["mouth"] = inputs.mouth_input(track.mouth[frames])[None]
        if lips is not None:
            # mesh gaps filled from the pass's own frames: a pass reads the same in
            # every window that holds it (its scores are cached across windows)
            contour = inputs.fill_gaps(track.times[frames], lips[frames])
            feed["lips"] = inputs.lips_input(contour)[None]
        out = np.full((len(steps), SPEC.frames), -np.inf, np.float32)
        for c in _block_centres(int(steps.min()), int(steps.max())):
            shift = steps - c + SPEC.max_shift  # position of each offset in this block
            inside = (shift >= 0) & (shift < SPEC.shifts)
            if not inside.any():
                continue
            mel = inputs.audio_input(window.audio, window.audio_t0, t_start, c)
            got = self.session.run(None, {**feed, "mel": mel[None]})[0][0]
            out[inside] = got[shift[inside]]
        return out

    def _remember(self, key: tuple, out: np.ndarray) -> None:
        self._cache[key] = out
        while len(self._cache) > PASS_CACHE:
            self._cache.pop(next(iter(self._cache)))  # the oldest: windows move forward

    def describe(self) -> dict:
        return {"model": self.path.name, "pass_s": SPEC.frames * SPEC.step_s}


def _passes(n: int, frames: int) -> list[tuple[int, slice]]:
    """(first step, the steps of the pass that are new) covering n steps with passes of
    `frames`; a last pass overlapping the one before keeps only its new steps."""
    if n <= frames:
        return [(0, slice(0, n))]
    out = [(first, slice(0, frames)) for first in range(0, n - frames + 1, frames)]
    done = out[-1][0] + frames
    if done < n:
        out.append((n - frames, slice(frames - (n - done), frames)))
    return out


def centre_steps(scores: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, int]:
    """(candidates, steps) scores -> each step's scores minus their mean over the
    candidates it can score (0 where it cannot), and how many steps count (>= 3
    candidates to tell apart).

    Centring is the log-softmax's job (the two differ by a constant per step) done so
    that a candidate a step cannot score counts as "no evidence" rather than being
    missing: near the ends of a short clip the candidates each step can score differ,
    and per-candidate averages over different steps and rival sets are not comparable
    (a 1.4 s clip read +600 ms that way)."""
    ok = ok & (ok.sum(axis=0, keepdims=True) >= 3)
    n = np.maximum(ok.sum(axis=0, keepdims=True), 1)
    mean = np.where(ok, scores, 0.0).sum(axis=0, keepdims=True) / n
    return np.where(ok, scores - mean, 0.0), int(ok.any(axis=0).sum())


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
