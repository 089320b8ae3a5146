"""torch checkpoint -> ONNX (fixed shape, one pass), checked against onnxruntime."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from avsync.model.net import SyncScorer
from avsync.model.spec import SPEC

INPUT_NAMES = ("mouth", "mel")
OUTPUT_NAME = "scores"


def load_checkpoint(path: Path) -> SyncScorer:
    state = torch.load(path, map_location="cpu", weights_only=False)
    geometry = bool(state.get("summary", {}).get("geometry", False))
    model = SyncScorer(geometry=geometry)
    model.load_state_dict(state.get("state_dict", state))
    return model.eval()


def example_inputs(model: SyncScorer, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One pass's inputs, in the order of input_names(model)."""
    g = torch.Generator().manual_seed(seed)
    out = (torch.randn(1, SPEC.frames, SPEC.mouth_h, SPEC.mouth_w, generator=g),
           torch.randn(1, SPEC.audio_frames, SPEC.n_mels, generator=g))
    return out + ((torch.randn(1, SPEC.frames, 2, generator=g),) if model.geometry else ())


def input_names(model: SyncScorer) -> list[str]:
    return list(INPUT_NAMES) + (["geometry"] if model.geometry else [])


def to_onnx_bytes(model: SyncScorer) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the tracer's notes on shapes it bakes in: the graph is fixed-shape by design
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the dynamo one needs onnxscript, not a dependency
        torch.onnx.export(model, example_inputs(model), buffer,
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
            expected = model(*args).numpy()
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
