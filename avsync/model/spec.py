"""Shapes and time grid of the sync model, shared by training, export and inference.

The model works on its own 25 Hz grid whatever the source frame rate: video is
sampled at the grid times (nearest decoded frame), audio is 4 log-mel frames per
grid step. It scores every (video step, candidate offset) pair; a candidate offset
is a whole number of grid steps (40 ms) and the estimator refines the peak between
steps. One exported pass covers `frames` video steps and every shift of one block.
"""

from __future__ import annotations

from dataclasses import dataclass

from avsync.features import audio as af
from avsync.features.face import DETECT_EVERY, MOUTH_H, MOUTH_W


@dataclass(frozen=True)
class ModelSpec:
    step_s: float = 0.04  # the model's time grid: 25 Hz
    frames: int = 15  # video steps per exported pass (0.6 s), as in training
    max_shift: int = 15  # candidate offsets per pass: -15..+15 steps (+-600 ms)
    band: int = 2  # each video step attends to audio steps within +-band of its partner
    # audio steps either side that one audio feature reads (its convolutions'
    # receptive field): a pair is scored from real audio only when this much is there
    audio_context: int = 3
    mels_per_step: int = 4  # 10 ms log-mel hop
    n_mels: int = af.N_MELS
    mouth_h: int = MOUTH_H
    mouth_w: int = MOUTH_W
    # face mesh every n frames for the model's front end: the model reads the crop's
    # pixels every frame, landmarks only steer the crop (avsync.features.face)
    landmark_every: int = 2
    # face detection every n frames while a face is tracked (avsync.features.face)
    detect_every: int = DETECT_EVERY

    @property
    def shifts(self) -> int:
        return 2 * self.max_shift + 1

    @property
    def margin(self) -> int:
        """Audio steps a pass reads beyond its shift range on each side."""
        return self.band + self.audio_context

    @property
    def audio_steps(self) -> int:
        """Audio grid steps one pass reads: the video span, every shift, the margins."""
        return self.frames + 2 * self.max_shift + 2 * self.margin

    @property
    def audio_frames(self) -> int:
        return self.audio_steps * self.mels_per_step


SPEC = ModelSpec()
