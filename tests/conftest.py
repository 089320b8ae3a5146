from __future__ import annotations

from pathlib import Path

import pytest

from avsync.synth import TestSignalSpec, TestSignalTruth, write_test_signal

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "clips" / "dev"


@pytest.fixture
def make_signal(tmp_path: Path):
    """make_signal(name, **spec fields) -> (path, truth): a real encoded test signal."""

    def make(name: str = "signal.mp4", **fields) -> tuple[Path, TestSignalTruth]:
        fields.setdefault("size", (160, 96))
        path = tmp_path / name
        truth = write_test_signal(path, TestSignalSpec(**fields))
        return path, truth

    return make


def mean_truth_ms(truth: TestSignalTruth) -> float:
    offsets = truth.offsets_ms
    return sum(offsets) / len(offsets)
