from fractions import Fraction

import pytest

from avsync.media.clock import CONFIRM_ITEMS, MPEGTS_PTS_BITS, MediaClock, pts_to_seconds

TB90K = Fraction(1, 90_000)


def _two_streams_for_2_s(clock: MediaClock):
    """Video at 25 fps and audio in 40 ms blocks, both run up to 2.0 s."""
    video = clock.stream("video", TB90K)
    audio = clock.stream("audio", Fraction(1, 48_000))
    for i in range(50):
        video(i * 3600, 0.04)
        audio(i * 1920, 0.04)
    return video, audio


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
    # the first frames after the step are held until the stream goes on from it
    assert [video(i * 3600, 0.04) for i in range(CONFIRM_ITEMS - 1)] == \
        [None] * (CONFIRM_ITEMS - 1)
    t, jumped = video((CONFIRM_ITEMS - 1) * 3600, 0.04)
    assert jumped and clock.jumps == 1 and clock.strays == 0
    # re-based to run on from the previous frame (the held ones are not shown)
    assert t == pytest.approx(0.04 * CONFIRM_ITEMS)


def test_jump_in_both_streams_keeps_their_relation():
    """A splice moves both streams; the audio-video relation after it must be the source's."""
    clock = MediaClock(origin_s=0.0)
    video, audio = _two_streams_for_2_s(clock)
    # at 2.0 s both jump by +1000 s; the audio is 12.5 ms later than the video
    placed_v = [video(round((1002.0 + 0.04 * i) * 90_000), 0.04) for i in range(5)]
    placed_a = [audio(round((1002.0125 + 0.04 * i) * 48_000), 0.04) for i in range(5)]
    assert placed_v[:CONFIRM_ITEMS - 1] == placed_a[:CONFIRM_ITEMS - 1] == \
        [None] * (CONFIRM_ITEMS - 1)
    (tv, jv), (ta, ja) = placed_v[CONFIRM_ITEMS - 1], placed_a[CONFIRM_ITEMS - 1]
    assert jv and ja
    assert clock.jumps == 1  # one discontinuity, seen by two streams
    assert tv == pytest.approx(2.0 + 0.04 * (CONFIRM_ITEMS - 1))
    assert ta - tv == pytest.approx(0.0125, abs=1e-9)


@pytest.mark.parametrize("stray_s", [-1.44, -0.3, 20.0])
def test_one_item_out_of_order_is_dropped_and_does_not_move_the_stream(stray_s):
    """A stale frame or a repeated packet must not re-base its stream: the old clock
    kept the stream running on from it, and the A/V relation moved by the step for the
    rest of the input."""
    events = []
    clock = MediaClock(origin_s=0.0, on_event=events.append)
    video, audio = _two_streams_for_2_s(clock)
    assert video(round((2.0 + stray_s) * 90_000), 0.04) is None  # held, then dropped
    tv, jv = video(50 * 3600, 0.04)
    ta, ja = audio(50 * 1920, 0.04)
    assert not jv and not ja
    assert tv == pytest.approx(2.0) and ta == pytest.approx(2.0)
    assert clock.jumps == 0 and clock.strays == 1
    assert [(e.kind, e.stream) for e in events] == [("stray", "video")]
    assert f"{stray_s:+.3f} s out of timestamp order" in events[0].describe()


def test_an_item_stamped_ahead_within_the_gap_limit_does_not_move_the_stream():
    """A forward step under the jump limit is a gap and is placed at once; a step back
    to the old time right after it means that item was the stray. (The soak's RTSP
    picture carries pairs of frames 0.72 s ahead: the old clock re-based on each and
    read 1,440 ms off.)"""
    clock = MediaClock(origin_s=0.0)
    video, audio = _two_streams_for_2_s(clock)
    t_stray, _ = video(round((2.0 + 1.44) * 90_000), 0.04)
    assert t_stray == pytest.approx(3.44)  # taken as a gap when it came
    placed = [video((50 + i) * 3600, 0.04) for i in range(3)]
    assert [t for t, _ in placed] == pytest.approx([2.0, 2.04, 2.08])
    assert clock.jumps == 0 and clock.strays == 1
    tv, _ = video(round(4.0 * 90_000), 0.04)  # a real 1.88 s gap later is still a gap
    assert tv == pytest.approx(4.0) and clock.jumps == 0


def test_a_jump_in_one_stream_is_logged_as_its_own():
    events = []
    clock = MediaClock(origin_s=0.0, on_event=events.append)
    audio = clock.stream("audio", Fraction(1, 48_000))
    for i in range(10):
        audio(i * 1920, 0.04)
    for i in range(CONFIRM_ITEMS):
        audio(round((0.4 - 1.44 + 0.04 * i) * 48_000), 0.04)
    assert clock.jumps == 1 and clock.strays == 0
    assert events[0].describe() == "audio timestamps jumped -1.440 s at 0.40 s (re-based to run on)"


def test_forward_gap_below_threshold_is_kept_as_gap():
    clock = MediaClock(origin_s=0.0, forward_jump_s=5.0)
    video = clock.stream("video", TB90K)
    video(0, 0.04)
    t, jumped = video(2 * 90_000, 0.04)  # a 2 s still (VFR) is not a jump
    assert not jumped and t == pytest.approx(2.0)


def test_bad_thresholds_are_rejected():
    with pytest.raises(ValueError):
        MediaClock(forward_jump_s=0)
