from fractions import Fraction

import pytest

from avsync.media.clock import MPEGTS_PTS_BITS, MediaClock, pts_to_seconds

TB90K = Fraction(1, 90_000)


def test_pts_to_seconds_is_exact_for_ntsc_rates():
    assert pts_to_seconds(30_030, TB90K) == pytest.approx(1001 / 3000, abs=1e-12)


def test_mpegts_wrap_keeps_time_running_forward():
    clock = MediaClock(wrap_bits=MPEGTS_PTS_BITS)
    video = clock.stream("video", TB90K)
    period = 1 << MPEGTS_PTS_BITS
    start = period - 3 * 90_000  # 3 s before the 33-bit counter wraps
    times = []
    for i in range(150):  # 6 s at 25 fps
        pts = (start + i * 3600) % period
        t, jumped = video(pts, 0.04)
        assert not jumped
        times.append(t)
    assert times[0] == 0.0
    assert times[-1] == pytest.approx(149 * 0.04, abs=1e-9)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert clock.jumps == 0


def test_without_wrap_bits_a_wrap_is_a_backward_jump():
    clock = MediaClock(wrap_bits=None)
    video = clock.stream("video", TB90K)
    video((1 << 33) - 3600, 0.04)
    t, jumped = video(0, 0.04)
    assert jumped and clock.jumps == 1
    assert t == pytest.approx(0.04)  # re-based right after the previous frame


def test_jump_in_both_streams_keeps_their_relation():
    """A splice moves both streams; the audio-video relation after it must be the source's."""
    clock = MediaClock(origin_s=0.0)
    video = clock.stream("video", TB90K)
    audio = clock.stream("audio", Fraction(1, 48_000))
    for i in range(50):
        video(i * 3600, 0.04)
        audio(i * 1920, 0.04)
    # at 2.0 s both jump by +1000 s; the audio is 12.5 ms later than the video
    tv, jv = video(round((1002.0) * 90_000), 0.04)
    ta, ja = audio(round((1002.0125) * 48_000), 0.04)
    assert jv and ja
    assert clock.jumps == 1  # one discontinuity, seen by two streams
    assert tv == pytest.approx(2.0)
    assert ta - tv == pytest.approx(0.0125, abs=1e-9)


def test_forward_gap_below_threshold_is_kept_as_gap():
    clock = MediaClock(origin_s=0.0, forward_jump_s=5.0)
    video = clock.stream("video", TB90K)
    video(0, 0.04)
    t, jumped = video(2 * 90_000, 0.04)  # a 2 s still (VFR) is not a jump
    assert not jumped and t == pytest.approx(2.0)


def test_bad_thresholds_are_rejected():
    with pytest.raises(ValueError):
        MediaClock(forward_jump_s=0)
