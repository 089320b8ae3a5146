"""torch checkpoint -> ONNX (fixed shape, one pass), checked against onnxruntime."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avsync.model.inputs import LIP_FEATURES
from avsync.model.net import SyncScorer
from avsync.model.spec import SPEC

OUTPUT_NAME = "scores"


def load_checkpoint(path: Path) -> SyncScorer:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = SyncScorer(front=state.get("summary", {}).get("front", "crop"))
    weights = {k: v for k, v in state.get("state_dict", state).items()
               if not k.startswith("lip_head.")}  # a training-only head
    model.load_state_dict(weights)
    return model.eval()


def input_names(model: SyncScorer) -> list[str]:
    """The ONNX model's inputs: the video inputs its front reads, and the log-mel."""
    return {"crop": ["mouth", "mel"], "lips": ["lips", "mel"],
            "fused": ["mouth", "mel", "lips"]}[model.front]


class _Graph(nn.Module):
    """The model with the inputs of input_names(model), in that order, and no others."""

    def __init__(self, model: SyncScorer) -> None:
        super().__init__()
        self.model = model
        self.names = input_names(model)
        # the exporter restores the wrapper's mode afterwards, and with it the model's:
        # a fresh wrapper (training mode) would leave the model training
        self.train(model.training)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        given = dict(zip(self.names, args, strict=True))
        return self.model(given.get("mouth"), given["mel"], given.get("lips"))


def example_inputs(model: SyncScorer, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One pass's inputs, in the order of input_names(model)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"mouth": (1, SPEC.frames, SPEC.mouth_h, SPEC.mouth_w),
              "mel": (1, SPEC.audio_frames, SPEC.n_mels),
              "lips": (1, SPEC.frames, LIP_FEATURES)}
    return tuple(torch.randn(*shapes[name], generator=g) for name in input_names(model))


def to_onnx_bytes(model: SyncScorer) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the tracer's notes on shapes it bakes in: the graph is fixed-shape by design
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the dynamo one needs onnxscript, not a dependency
        torch.onnx.export(_Graph(model), example_inputs(model), buffer,
                          input_names=input_names(model), output_names=[OUTPUT_NAME],
                          opset_version=17, dynamo=False)
    return buffer.getvalue()


def max_difference(model: SyncScorer, onnx_bytes: bytes, seeds: range = range(3)) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed in seeds:
        args = example_inputs(model, seed)
        with torch.no_grad():
            expected = _Graph(model)(*args).numpy()
        feed = {name: x.numpy() for name, x in zip(input_names(model), args, strict=True)}
        got = session.run(None, feed)[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def export(checkpoint: Path, out: Path, tolerance: float = 1e-4) -> float:
    model = load_checkpoint(checkpoint)
    onnx_bytes = to_onnx_bytes(model)
    diff = max_difference(model, onnx_bytes)
    if diff > tolerance:
        raise RuntimeError(f"ONNX and torch disagree by {diff:.2e} (> {tolerance:g})")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onnx_bytes)
    return diff
