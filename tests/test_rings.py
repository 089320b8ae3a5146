import threading
import tracemalloc

import numpy as np
import pytest

from avsync.media.rings import AVRings

RATE = 16_000


def _rings(seconds=5.0, lossless=False) -> AVRings:
    return AVRings(seconds, RATE, (4,), np.float32, max_fps=30, lossless=lossless)


def test_window_returns_items_and_samples_of_the_span_only():
    rings = _rings()
    for i in range(100):  # 4 s of 25 fps
        rings.push_video(i * 0.04, np.full(4, i, np.float32))
    ramp = np.arange(4 * RATE, dtype=np.float32)
    for start in range(0, len(ramp), 1000):
        rings.push_audio(start / RATE, ramp[start : start + 1000])
    w = rings.window(1.0, 2.0)
    assert w.video_times[0] == pytest.approx(1.0) and w.video_times[-1] == pytest.approx(1.96)
    assert len(w.video_times) == 25
    assert list(w.video_features[:, 0]) == list(range(25, 50))
    assert w.audio_t0 == pytest.approx(1.0)
    assert len(w.audio) == RATE
    assert w.audio[0] == RATE and w.audio[-1] == 2 * RATE - 1  # sample k sits at k / RATE


def test_audio_hole_becomes_counted_silence_and_overlap_is_trimmed():
    rings = _rings()
    rings.push_audio(0.0, np.ones(1600, np.float32))  # 0.0 .. 0.1 s
    rings.push_audio(0.2, np.ones(1600, np.float32))  # hole of 0.1 s
    assert rings.audio.gap_samples == 1600
    rings.push_audio(0.25, np.full(1600, 2.0, np.float32))  # overlaps 0.25..0.3
    w = rings.window(0.0, 1.0)
    assert len(w.audio) == 0.35 * RATE
    assert w.audio[1600:3200].sum() == 0  # the hole
    assert (w.audio[3200:4800] == 1).all()  # the first block over the overlap wins
    assert (w.audio[4800:] == 2).all()


def test_live_ring_drops_oldest_and_counts_it():
    rings = _rings(seconds=1.0)  # 30 video items, 16000 samples
    for i in range(100):
        rings.push_video(i * 0.04, np.zeros(4, np.float32))
    rings.push_audio(0.0, np.zeros(3 * RATE, np.float32))
    assert rings.video.dropped == 70
    assert rings.audio.dropped == 2 * RATE
    w = rings.window(0, 10)
    assert w.video_times[0] == pytest.approx(70 * 0.04)
    assert w.audio_t0 == pytest.approx(2.0)


def test_lossless_ring_makes_the_producer_wait_and_loses_nothing():
    rings = _rings(seconds=1.0, lossless=True)
    total_s = 20.0

    def produce():
        for i in range(int(total_s * 25)):
            rings.push_video(i * 0.04, np.full(4, i, np.float32))
            rings.push_audio(i * 0.04, np.full(640, i, np.float32))
        rings.close()

    thread = threading.Thread(target=produce)
    thread.start()
    seen_video, seen_audio, t = [], 0, 0.0
    while t < total_s:
        rings.wait_until(t + 0.5, timeout=5)
        w = rings.window(t, t + 0.5)
        seen_video += list(w.video_features[:, 0])
        seen_audio += len(w.audio)
        rings.release(t + 0.5)
        t += 0.5
    thread.join(5)
    assert not thread.is_alive()
    assert rings.video.dropped == 0 and rings.audio.dropped == 0
    assert seen_video == list(range(500))
    assert seen_audio == total_s * RATE


def test_lossless_ring_drops_rather_than_deadlocks_when_consumer_waits():
    """Video floods a full ring while the consumer waits for audio that comes late."""
    rings = _rings(seconds=1.0, lossless=True)
    done = threading.Event()

    def produce():
        for i in range(200):  # 8 s of video, far more than the ring holds
            rings.push_video(i * 0.04, np.zeros(4, np.float32))
        rings.push_audio(0.0, np.zeros(RATE, np.float32))
        done.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    assert rings.wait_until(0.5, timeout=10)
    assert done.wait(10), "producer is stuck behind a consumer that waits for it"
    assert rings.video.dropped > 0


def test_memory_is_bounded_for_ten_minutes_of_media():
    rings = AVRings(30.0, RATE, (48, 96), np.uint8, max_fps=60)
    fixed = rings.nbytes
    crop = np.zeros((48, 96), np.uint8)
    block = np.zeros(640, np.float32)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(10 * 60 * 25):  # 10 minutes at 25 fps, consumer keeping up
        t = i * 0.04
        rings.push_video(t, crop)
        rings.push_audio(t, block)
        if i % 25 == 0 and t >= 1:
            rings.window(t - 1, t)
            rings.release(t - 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rings.nbytes == fixed
    assert peak - base < 2_000_000  # one window's copies, not the stream


def test_bad_sizes_say_what_to_change():
    with pytest.raises(ValueError, match="seconds"):
        AVRings(0, RATE, (1,))
    with pytest.raises(ValueError, match="empty window"):
        _rings().window(2.0, 1.0)
