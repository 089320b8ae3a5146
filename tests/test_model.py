"""The sync model: shapes, what each score may read, training signal, torch/ONNX parity,
the shipped weights."""

from pathlib import Path

import numpy as np
import pytest
import torch

from avsync.estimate.offset import confidence_from_prominence
from avsync.model import data, inputs
from avsync.model.export import example_inputs, max_difference, to_onnx_bytes
from avsync.model.infer import _passes, centre_steps
from avsync.model.net import SyncScorer, parameter_count
from avsync.model.spec import SPEC
from avsync.model.train import make_batch, pair_mask
from avsync.synth import TalkingHeadSpec, write_talking_head


def _random_inputs(batch: int, seed: int = 0, frames: int = SPEC.frames):
    """(mouth, mel, lips) of `batch` passes."""
    g = torch.Generator().manual_seed(seed)
    audio_steps = frames + 2 * SPEC.max_shift + 2 * SPEC.margin
    return (torch.randn(batch, frames, SPEC.mouth_h, SPEC.mouth_w, generator=g),
            torch.randn(batch, audio_steps * SPEC.mels_per_step, SPEC.n_mels, generator=g),
            torch.randn(batch, frames, inputs.LIP_FEATURES, generator=g))


def _trained_looking(front: str = "fused") -> SyncScorer:
    """A network with non-trivial batch-norm statistics and attention positions, as
    after training; the same weights every run (one draw in ~40 scores so flat that
    two different inputs read alike within 1e-3)."""
    torch.manual_seed(0)
    model = SyncScorer(front=front)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5, generator=g)
                module.running_var.uniform_(0.5, 2.0, generator=g)
        model.slot.normal_(0, 1, generator=g)
    return model.eval()


def test_one_score_per_step_and_shift_and_batching_changes_nothing():
    model = _trained_looking()
    assert parameter_count(model) <= 10_000_000
    mouth, mel, lips = _random_inputs(3)
    with torch.no_grad():
        together = model(mouth, mel, lips)
        apart = torch.cat([model(mouth[i : i + 1], mel[i : i + 1], lips[i : i + 1])
                           for i in range(3)])
    assert together.shape == (3, SPEC.shifts, SPEC.frames)
    assert torch.allclose(together, apart, atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # the scores depend on the input


def test_moving_the_audio_one_step_moves_the_scores_one_shift():
    """Shift s pairs video step t with audio step t - s: audio that arrives one step
    earlier (leads one step more) must score exactly as the next shift did."""
    model = _trained_looking()
    mouth, mel, lips = _random_inputs(1, seed=3)
    k = SPEC.mels_per_step
    earlier = torch.cat([mel[:, k:], torch.zeros_like(mel[:, :k])], 1)
    with torch.no_grad():
        a, b = model(mouth, mel, lips)[0], model(mouth, earlier, lips)[0]
    # the encoder reads `audio_context` steps either side: away from the padded end the
    # scores are the same numbers one shift on
    assert torch.allclose(b[1:], a[:-1], atol=1e-5)
    assert not torch.allclose(b, a, atol=1e-3)


def test_a_pair_reads_only_the_audio_its_mask_allows():
    """Audio beyond a pair's partner, band and encoder reach changes nothing: what lets
    training mask pairs at clip edges without the edges leaking the offset."""
    model = _trained_looking()
    mouth, mel, lips = _random_inputs(1, seed=5)
    index = inputs.pair_index()  # (shifts, frames) audio step of each pair
    cut = 30  # audio steps from here on replaced by noise
    changed = mel.clone()
    tail = cut * SPEC.mels_per_step
    changed[:, tail:] = torch.randn_like(changed[:, tail:])
    with torch.no_grad():
        a, b = model(mouth, mel, lips)[0], model(mouth, changed, lips)[0]
    safe = torch.as_tensor(index + SPEC.margin < cut)
    assert safe.any() and (~safe).any()
    assert torch.allclose(a[safe], b[safe], atol=1e-5)
    assert not torch.allclose(a[~safe], b[~safe], atol=1e-3)


def test_torch_and_onnx_agree_and_the_graph_takes_only_what_its_front_reads():
    import onnxruntime as ort

    for front, names in (("crop", {"mouth", "mel"}), ("lips", {"lips", "mel"}),
                         ("fused", {"mouth", "mel", "lips"})):
        model = _trained_looking(front)
        graph = to_onnx_bytes(model)
        assert max_difference(model, graph) < 1e-4
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        assert {i.name for i in session.get_inputs()} == names


def test_each_front_reads_its_own_input_only():
    """The crop model ignores the lip contour, the lip model the crops; the fused one
    reads both."""
    mouth, mel, lips = _random_inputs(1, seed=2)
    other_mouth, _, other_lips = _random_inputs(1, seed=9)
    with torch.no_grad():
        for front, mouth_matters, lips_matter in (("crop", True, False),
                                                  ("lips", False, True),
                                                  ("fused", True, True)):
            model = _trained_looking(front)
            base = model(mouth, mel, lips)
            assert torch.allclose(base, model(other_mouth, mel, lips)) != mouth_matters
            assert torch.allclose(base, model(mouth, mel, other_lips)) != lips_matter


def test_lip_features_are_the_same_in_numpy_and_torch_and_mirror_with_the_picture():
    from avsync.features import lips as lp
    from avsync.model.augment import mirror_lips, normalise_lips

    rng = np.random.default_rng(4)
    contour = rng.normal(0, 0.05, (SPEC.frames, lp.N_LIP, 3)).astype(np.float32)
    expected = inputs.lips_input(contour)
    got = normalise_lips(torch.from_numpy(contour)[None])[0].numpy()
    assert expected.shape == (SPEC.frames, inputs.LIP_FEATURES)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # mirroring twice is the identity; once, the left corner lands where the right was
    assert np.allclose(lp.mirror(lp.mirror(contour)), contour)
    once = lp.mirror(contour)
    left, right = lp.LIP_POINTS.index(61), lp.LIP_POINTS.index(291)
    assert np.allclose(once[:, left, 0], -contour[:, right, 0])
    assert np.allclose(mirror_lips(torch.from_numpy(contour)).numpy(), once)


def test_audio_input_follows_the_offset_sign():
    """Audio leading by d: the mel a pass sees for offset block 0 equals the in-sync mel
    read d later."""
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16_000 * 4).astype(np.float32)
    d = 5 * SPEC.step_s
    a = inputs.audio_input(audio, -d, 1.0)  # the sound of picture time t sits at t - d
    b = inputs.audio_input(audio, 0.0, 1.0 + d)
    assert np.allclose(a, b, atol=1e-4)


def test_passes_cover_a_window_once():
    for n in (1, 9, 15, 16, 29, 75, 76):
        covered = np.zeros(n, int)
        for first, new in _passes(n, SPEC.frames):
            covered[first + np.arange(SPEC.frames)[new]] += 1
        assert (covered == 1).all(), n


def test_a_candidate_a_step_cannot_score_counts_as_no_evidence():
    """Centred per step over the candidates it can score, 0 for the others: a candidate
    scored only where few rivals exist must not win on that alone."""
    scores = np.array([[1.0, 5.0, 0.0], [2.0, 0.0, 0.0], [3.0, 9.0, 9.0], [6.0, 4.0, 1.0]])
    ok = np.array([[True, True, True], [True, False, True], [True, True, False],
                   [True, True, False]])
    centred, used = centre_steps(scores, ok)
    assert used == 2  # the last step has only two candidates: nothing to tell apart
    assert centred[:, 0] == pytest.approx([-2.0, -1.0, 0.0, 3.0])
    assert centred[:, 1] == pytest.approx([-1.0, 0.0, 3.0, -2.0])
    assert not centred[:, 2].any()


def test_pairs_past_a_short_clip_are_masked():
    """A 1.2 s clip (news clips are) cannot pair every step with every shift: the masks
    keep exactly the pairs whose audio the clip holds, and always the truth."""
    n = 30
    clip = data.GridClip(
        "c", "s", 0.0, np.zeros((n, SPEC.mouth_h, SPEC.mouth_w), np.uint8), np.ones(n, bool),
        np.zeros((SPEC.mels_per_step * (n + 40), SPEC.n_mels), np.float32),
        np.r_[np.zeros(20, bool), np.ones(n, bool), np.zeros(20, bool)],
        np.ones(n + 40, np.float32), 20)
    mask = pair_mask(clip, 8, 15, SPEC)
    assert mask.shape == (SPEC.shifts, 15)
    assert mask[SPEC.max_shift, 4:11].all()  # the truth, away from the edges
    partner = 8 + np.arange(15)[None, :] - np.arange(-15, 16)[:, None]
    inside = (partner - SPEC.margin >= 0) & (partner + SPEC.margin < n)
    assert (mask == inside).all()


def test_a_grid_clip_refills_a_pass_from_its_own_frames_as_inference_does():
    """The mesh reads every 2nd frame. Training reads contours filled over the whole
    clip; an evaluation must read a pass as inference does, filled from the pass alone
    (a pass that starts on a skipped frame holds its first read contour there)."""
    from avsync.features.lips import N_LIP

    n = 40
    lips = np.random.default_rng(0).normal(size=(n, N_LIP, 3)).astype(np.float32)
    lips[1::2] = np.nan  # skipped by the mesh
    times = np.arange(n) * SPEC.step_s
    mouth = np.zeros((n, SPEC.mouth_h, SPEC.mouth_w), np.uint8)
    audio = np.zeros(int(n * SPEC.step_s * 16000), np.float32)
    features = data.ClipFeatures("c", times, mouth, np.ones(n, bool), audio, 0.0,
                                 np.zeros(n, np.float32), lips)
    clip = data.to_grid(features)
    assert np.isfinite(clip.lips).all()  # training's whole-clip fill
    assert (clip.lip_read == np.isfinite(lips).all(axis=(1, 2))).all()
    got = clip.pass_lips(np.arange(5, 5 + SPEC.frames))
    assert np.array_equal(got[0], lips[6])  # held, not interpolated from frame 4
    assert got[2] == pytest.approx((lips[6] + lips[8]) / 2)  # inside: interpolated
    assert not np.allclose(clip.lips[5], lips[6])  # the whole-clip fill differs there


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heads")
    paths = []
    for seed in range(2):
        path = folder / f"head{seed}.mp4"
        write_talking_head(path, TalkingHeadSpec(duration_s=10.0, seed=seed))
        paths.append(path)
    return paths


def test_short_training_lowers_the_loss_and_separates_aligned_from_shifted(tiny_set, tmp_path):
    from avsync.model.train import TrainConfig, load_sources, train

    config = TrainConfig(max_steps=150, minutes=30.0, batch=8, lr=3e-3, val_every=50,
                         log_every=10_000, val_share=0.0, cache_dir=str(tmp_path / "cache"))
    sources = {"a": tiny_set[:1], "b": tiny_set[1:]}
    summary = train(sources, tmp_path / "tiny.pt", config, log=lambda _: None)
    assert summary["steps"] == 150 and (tmp_path / "tiny.pt").exists()
    # aligned vs shifted on passes of the training clips, before and after
    held, _ = load_sources(sources, config)
    mouth, mel, mask, _ = make_batch(held, 64, config.pass_steps, np.random.default_rng(3))
    from avsync.model.augment import normalise_mel, normalise_mouth
    from avsync.model.train import pass_accuracy, step_loss

    state = torch.load(tmp_path / "tiny.pt", weights_only=False)["state_dict"]
    trained, fresh = SyncScorer().eval(), SyncScorer().eval()
    trained.load_state_dict(state)
    with torch.no_grad():
        before = fresh(normalise_mouth(mouth), normalise_mel(mel))
        after = trained(normalise_mouth(mouth), normalise_mel(mel))
    assert step_loss(after, mask)[0] < step_loss(before, mask)[0] - 0.3
    chance = 3 / SPEC.shifts  # within one step of the truth by luck
    assert pass_accuracy(after, mask) > 2 * chance


def test_a_run_paused_and_resumed_ends_where_an_unbroken_run_ends(tiny_set, tmp_path):
    """A long CPU run may span sessions: stopped at a checkpoint and carried on, it must
    give the very model one run gives (optimiser, random draws and dropout included)."""
    from dataclasses import replace

    from avsync.model.train import TrainConfig, train

    config = TrainConfig(max_steps=8, minutes=30.0, batch=4, log_every=10_000, val_share=0.0,
                         checkpoint_every=3, front="fused", aux_weight=1.0,
                         cache_dir=str(tmp_path / "cache"))
    sources = {"a": tiny_set[:1], "b": tiny_set[1:]}
    train(sources, tmp_path / "whole.pt", config, log=lambda _: None)
    paused = train(sources, tmp_path / "split.pt", replace(config, pause_at_step=5),
                   log=lambda _: None)
    assert paused["paused"] and not (tmp_path / "split.pt").exists()
    train(sources, tmp_path / "split.pt", config, log=lambda _: None, resume=True)
    whole = torch.load(tmp_path / "whole.pt", weights_only=False)["state_dict"]
    split = torch.load(tmp_path / "split.pt", weights_only=False)["state_dict"]
    assert whole.keys() == split.keys() and not any(k.startswith("lip_head") for k in whole)
    for key in whole:
        assert torch.equal(whole[key], split[key]), key
    torch.manual_seed(config.seed)  # the weights training started from
    fresh = SyncScorer(front="fused", aux_lips=True).state_dict()
    moved = [k for k in whole if not torch.equal(whole[k], fresh[k])]
    assert any(k.startswith("video.cnn") for k in moved)  # it did train, the crop CNN too
    assert any(k.startswith("video.lips") for k in moved)


def test_a_feature_cache_is_found_again_after_the_media_moved(tiny_set, tmp_path):
    """Keyed by the file's bytes: a copy elsewhere with a new modification time (as
    ../shared comes back each session) is not decoded again."""
    import os
    import shutil

    cache = tmp_path / "cache"
    first = data.cached(tiny_set[0], cache)
    moved = tmp_path / "elsewhere" / tiny_set[0].name
    moved.parent.mkdir()
    shutil.copyfile(tiny_set[0], moved)
    os.utime(moved, (1e9, 1e9))
    again = data.cached(moved, cache)
    assert len(list(cache.glob("*.npz"))) == 1  # one cache file: not extracted twice
    np.testing.assert_array_equal(first.mouth, again.mouth)
    other = tmp_path / "other" / tiny_set[0].name  # other bytes, same name: a new entry
    other.parent.mkdir()
    shutil.copyfile(tiny_set[1], other)
    data.cached(other, cache)
    assert len(list(cache.glob("*.npz"))) == 2


def test_the_documented_training_command_runs(tiny_set, tmp_path):
    """tools/train.py as the README and the model card give it, on a tiny folder: its
    --cache default once named a field the config class does not have, and the
    command died before training."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "m.pt"
    run = subprocess.run([sys.executable, str(root / "tools" / "train.py"),
                          str(tiny_set[0].parent), "--steps", "3", "--batch", "4",
                          "--out", str(out), "--cache", str(tmp_path / "cache"),
                          "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = torch.load(out, weights_only=False)["summary"]
    assert summary["steps"] == 3 and summary["sources"][tiny_set[0].parent.name]["clips"] >= 1


def test_the_shipped_model_loads_from_the_package_and_matches_its_checkpoint():
    from avsync.model.export import load_checkpoint
    from avsync.model.infer import ModelScorer, weights_path

    onnx, pt = weights_path(), weights_path("sync.pt")
    if onnx is None or pt is None:
        pytest.fail("avsync/model/weights/sync.onnx or sync.pt is missing from the package")
    scorer = ModelScorer()
    model = load_checkpoint(pt)
    from avsync.model.export import input_names

    for seed in range(2):
        given = dict(zip(input_names(model), example_inputs(model, seed), strict=True))
        assert {i.name for i in scorer.session.get_inputs()} == set(given)
        got = scorer.session.run(None, {n: x.numpy() for n, x in given.items()})
        with torch.no_grad():
            expected = model(given.get("mouth"), given["mel"], given.get("lips")).numpy()
        assert got[0].shape == (1, SPEC.shifts, SPEC.frames)
        assert np.abs(got[0] - expected).max() < 1e-4
    # the fitted confidence: rises with evidence, stays within 0..1, measured from 1/3
    knots = scorer.confidence_knots
    assert knots is not None and np.all(np.diff(knots[:, 0]) > 0)
    assert np.all(np.diff(knots[:, 1]) >= 0) and knots[0, 1] > 0 and knots[-1, 1] <= 1
    assert confidence_from_prominence(scorer.min_prominence, 1.0, knots) == pytest.approx(
        1 / 3, abs=0.01)
