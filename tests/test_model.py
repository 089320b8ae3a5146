"""The sync model: shapes, training signal, torch/ONNX parity, the shipped weights."""

import numpy as np
import pytest
import torch

from avsync.model import inputs
from avsync.model.export import max_difference, to_onnx_bytes
from avsync.model.net import SyncScorer, parameter_count
from avsync.model.spec import SPEC
from avsync.synth import TalkingHeadSpec, write_talking_head


def _random_inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, SPEC.frames, SPEC.mouth_h, SPEC.mouth_w, generator=g),
            torch.randn(batch, SPEC.audio_frames, SPEC.n_mels, generator=g))


def test_one_score_per_shift_and_batching_changes_nothing():
    model = SyncScorer().eval()
    assert parameter_count(model) <= 10_000_000
    mouth, mel = _random_inputs(3)
    with torch.no_grad():
        together = model(mouth, mel)
        apart = torch.cat([model(mouth[i : i + 1], mel[i : i + 1]) for i in range(3)])
    assert together.shape == (3, SPEC.shifts)
    assert torch.allclose(together, apart, atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # the scores depend on the input


def test_the_score_of_a_shift_depends_on_its_own_audio_only():
    """Shift s pairs video step t with audio step t + 2K - s (+-band): moving the audio
    by one step must move the scores by one shift."""
    model = SyncScorer().eval()
    mouth, mel = _random_inputs(1, seed=3)
    k = SPEC.mels_per_step
    later = torch.cat([mel[:, k:], torch.zeros_like(mel[:, :k])], 1)  # audio one step earlier
    with torch.no_grad():
        a, b = model(mouth, mel)[0], model(mouth, later)[0]
    # interior shifts, away from the edges the move pads (the audio GRU is bidirectional,
    # so agreement is close but not exact)
    assert torch.corrcoef(torch.stack([a[4:-4], b[5:-3]]))[0, 1] > 0.9


def test_torch_and_onnx_agree():
    model = SyncScorer().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    assert max_difference(model, to_onnx_bytes(model)) < 1e-4


def test_audio_input_follows_the_offset_sign():
    """Audio leading by d: the mel a pass sees for offset block 0 equals the in-sync mel
    read d later."""
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16_000 * 4).astype(np.float32)
    d = 5 * SPEC.step_s
    # the sound of picture time t sits at t - d in the shifted copy
    shifted_t0 = -d
    a = inputs.audio_input(audio, shifted_t0, 1.0)
    b = inputs.audio_input(audio, 0.0, 1.0 + d)
    assert np.allclose(a, b, atol=1e-4)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heads")
    paths = []
    for seed in range(2):
        path = folder / f"head{seed}.mp4"
        write_talking_head(path, TalkingHeadSpec(duration_s=10.0, seed=seed))
        paths.append(path)
    return paths


def test_short_training_lowers_the_loss_and_finds_the_alignment(tiny_set, tmp_path):
    from avsync.model.train import TrainConfig, train

    config = TrainConfig(minutes=3.0, max_steps=150, batch=8, lr=3e-3, val_every=50,
                         log_every=10_000, val_share=0.3, dropout=0.0,
                         cache_dir=str(tmp_path / "cache"))
    summary = train(tiny_set, tmp_path / "tiny.pt", config, log=lambda _: None)
    first, last = summary["history"][0], summary["history"][-1]
    assert first["step"] == 0 and last["step"] == summary["steps"]
    assert last["loss"] < first["loss"] - 0.3
    chance = 3 / SPEC.shifts  # within one step of the truth by luck
    assert last["within_one"] > 2 * chance
    assert (tmp_path / "tiny.pt").exists()


def test_the_shipped_model_loads_from_the_package_and_scores():
    from avsync.model.infer import ModelScorer, weights_path

    path = weights_path()
    if path is None:
        pytest.fail("avsync/model/weights/sync.onnx is missing from the package")
    scorer = ModelScorer()
    mouth, mel = _random_inputs(1)
    out = scorer.session.run(None, {"mouth": mouth.numpy(), "mel": mel.numpy()})[0]
    assert out.shape == (1, SPEC.shifts) and np.isfinite(out).all()
    assert scorer.confidence_scale > 0 and scorer.min_prominence > 0
