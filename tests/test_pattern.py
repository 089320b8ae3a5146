import numpy as np
import pytest

from avsync.estimate.pattern import BeepDetector, FlashDetector, pair_events
from avsync.estimate.robust import theil_sen
from avsync.synth import tone_bursts

RATE = 16_000


def _feed_in_blocks(detector, audio, sizes, t0=0.0):
    onsets, pos, k = [], 0, 0
    while pos < len(audio):
        n = sizes[k % len(sizes)]
        onsets += detector(audio[pos : pos + n], t0 + pos / RATE)
        pos += n
        k += 1
    return onsets


def test_beep_onsets_are_found_to_a_fraction_of_a_sample_across_block_edges():
    rng = np.random.default_rng(7)
    truth = sorted(0.5 + 1.3 * np.arange(8) + rng.uniform(0, 0.3, 8))
    t = np.arange(int(12 * RATE)) / RATE
    audio = tone_bursts(t, truth, 1000.0, 0.08).astype(np.float32)
    audio += rng.normal(0, 0.003, len(audio)).astype(np.float32)  # -50 dBFS noise
    found = _feed_in_blocks(BeepDetector(RATE), audio, [1000, 333, 4096, 17])
    assert len(found) == len(truth)
    assert np.max(np.abs(np.array(found) - truth)) < 0.1e-3  # well under 1 ms


def test_speech_like_sound_is_not_a_beep():
    rng = np.random.default_rng(3)
    t = np.arange(5 * RATE) / RATE
    noise = rng.normal(0, 0.2, len(t))
    # a voiced-like harmonic series on 200 Hz: energy at 1 kHz, but not alone
    chord = sum(0.1 * np.sin(2 * np.pi * 200 * k * t) for k in range(1, 9))
    for sound in (noise, chord):
        assert BeepDetector(RATE)(sound.astype(np.float32), 0.0) == []


def test_beep_at_another_frequency_is_ignored_unless_asked_for():
    t = np.arange(3 * RATE) / RATE
    audio = tone_bursts(t, [1.0], 440.0, 0.1).astype(np.float32)
    assert BeepDetector(RATE, tone_hz=1000)(audio, 0.0) == []
    (onset,) = BeepDetector(RATE, tone_hz=440)(audio, 0.0)
    assert onset == pytest.approx(1.0, abs=0.2e-3)


def test_flash_onset_is_the_first_bright_frame_on_any_background():
    for background in (16.0, 90.0):
        det = FlashDetector()
        lumas = [background] * 10 + [235.0, 235.0] + [background] * 10 + [200.0]
        onsets = [det(i * 0.04, v) for i, v in enumerate(lumas)]
        found = [t for t in onsets if t is not None]
        assert found == pytest.approx([0.40, 22 * 0.04])


def test_slow_fades_are_not_flashes():
    det = FlashDetector()
    assert all(det(i * 0.04, 16 + 2.0 * i) is None for i in range(100))


def test_pairing_is_mutual_nearest_and_never_crosses_a_barrier():
    flashes = [1.5, 4.5, 7.5]
    beeps = [1.6, 4.4, 7.55]
    pairs = pair_events(flashes, beeps, max_offset_s=1.5)
    assert [round(p.offset_s, 3) for p in pairs] == [-0.1, 0.1, -0.05]
    assert len(pair_events(flashes, beeps, 1.5, barriers=[4.45])) == 2
    assert pair_events(flashes, [9.9], max_offset_s=1.5) == []


def test_theil_sen_ignores_outliers():
    x = np.arange(40, dtype=float)
    y = 0.5 * x + 3
    y[[5, 17, 30]] += [40, -25, 60]
    fit = theil_sen(x, y)
    assert fit.slope == pytest.approx(0.5, abs=1e-9)
    assert fit.intercept == pytest.approx(3, abs=1e-9)
    assert fit.inliers.sum() == 37


def test_theil_sen_samples_pairs_of_a_long_series_without_listing_them_all():
    # an hour of 1 s windows: 6.5 M pairs, above the sampling bound
    rng = np.random.default_rng(1)
    x = np.arange(3600, dtype=float)
    y = 0.002 * x + 40 + rng.normal(0, 2, len(x))
    bad = rng.choice(len(x), 700, replace=False)  # ~20% outliers, all one way
    y[bad] += 300
    fit = theil_sen(x, y)
    assert fit.slope == pytest.approx(0.002, rel=0.05)
    assert fit.intercept == pytest.approx(40, abs=1.5)
    assert not fit.inliers[bad].any()
    again = theil_sen(x, y)  # seeded: a report reads the same each run
    assert (again.slope, again.intercept) == (fit.slope, fit.intercept)
    from avsync.estimate.robust import _MAX_PAIRS, _pairs

    i, j = _pairs(len(x), seed=0)
    assert len(i) == _MAX_PAIRS and (i < j).all() and j.max() < len(x)
