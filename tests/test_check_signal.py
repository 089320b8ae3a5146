"""`check` on real encoded flash/beep media: the measured offset must equal the truth."""

from fractions import Fraction

import pytest

from avsync.check import check_file
from avsync.synth import parse_fps
from tests.conftest import mean_truth_ms
from tests.helpers import packet_time, remux

FPS = ["24", "25", "29.97", "30", "50", "59.94"]
OFFSETS = [-1000.0, -460.0, -60.0, 0.0, 13.7, 40.0, 1000.0]


@pytest.mark.parametrize("fps", FPS)
def test_offset_within_1ms_at_every_broadcast_rate(make_signal, fps):
    for offset in OFFSETS:
        path, truth = make_signal(f"s{offset}.mp4", fps=parse_fps(fps), offset_ms=offset,
                                  duration_s=8.0)
        report = check_file(str(path))
        assert report.method == "test-signal"
        assert report.offset_ms == pytest.approx(offset, abs=1.0), (fps, offset)
        assert report.detail["events"] == len(truth.flash_times)


def test_survives_low_bitrate_aac_and_h264(make_signal):
    for offset in (-185.0, 90.0):
        path, _ = make_signal("low.mp4", size=(640, 360), offset_ms=offset, duration_s=12.0,
                              video_bitrate=60_000, audio_bitrate=24_000)
        report = check_file(str(path))
        assert report.offset_ms == pytest.approx(offset, abs=1.0)
        assert report.confidence > 0.9


@pytest.mark.parametrize(
    "name, vcodec, acodec",
    [("hevc.mp4", "hevc", "aac"), ("mpeg2.ts", "mpeg2", "mp2"), ("mpeg4.mkv", "mpeg4", "opus"),
     ("pcm.mov", "h264", "pcm"), ("ac3.ts", "h264", "ac3")],
)
def test_other_codecs_and_containers(make_signal, name, vcodec, acodec):
    path, _ = make_signal(name, offset_ms=-77.0, video_codec=vcodec, audio_codec=acodec)
    assert check_file(str(path)).offset_ms == pytest.approx(-77.0, abs=1.0)


@pytest.mark.parametrize("ppm", [100.0, -100.0, 35.0])
def test_drift_over_two_minutes_within_5_percent(make_signal, ppm):
    path, truth = make_signal("drift.mp4", offset_ms=20.0, drift_ppm=ppm, duration_s=120.0,
                              size=(96, 64))
    report = check_file(str(path))
    true_ms_per_min = ppm * 1e-6 * 60_000
    assert report.drift_ms_per_min == pytest.approx(true_ms_per_min, rel=0.05)
    assert report.offset_ms == pytest.approx(mean_truth_ms(truth), abs=1.0)


def test_variable_frame_rate(make_signal):
    path, truth = make_signal("vfr.mp4", offset_ms=-33.0, vfr=True)
    report = check_file(str(path))
    assert [w.t for w in report.windows] == pytest.approx(truth.flash_times, abs=1e-6)
    assert report.offset_ms == pytest.approx(-33.0, abs=1.0)


def test_matroska_millisecond_timestamps_keep_audio_contiguous(make_signal):
    path, _ = make_signal("ms.mkv", offset_ms=25.0)
    report = check_file(str(path))
    assert report.stats.audio_gap_samples == 0
    assert report.offset_ms == pytest.approx(25.0, abs=1.0)


def test_streams_starting_at_different_times(make_signal, tmp_path):
    src, _ = make_signal("base.mp4", offset_ms=-50.0)
    # the audio starts 0.7 s after the video, and the file's clock starts at 10 s
    late = remux(src, tmp_path / "late.ts", shift=lambda kind, t: 10.0,
                 drop=lambda p: p.stream.type == "audio" and packet_time(p) < 0.7)
    report = check_file(str(late))
    assert report.offset_ms == pytest.approx(-50.0, abs=1.0)


def test_mpegts_pts_wrap_around(make_signal, tmp_path):
    src, truth = make_signal("base.ts", offset_ms=120.0, duration_s=12.0,
                             video_codec="mpeg2", audio_codec="mp2")
    wrap_s = float(Fraction(2**33, 90_000))
    wrapped = remux(src, tmp_path / "wrap.ts", shift=lambda kind, t: wrap_s - 5.0)
    report = check_file(str(wrapped))
    assert report.offset_ms == pytest.approx(120.0, abs=1.0)
    assert report.detail["events"] == len(truth.flash_times)
    assert report.stats.timestamp_jumps == 0


@pytest.mark.parametrize("jump_s", [1000.0, -300.0])
def test_timestamp_jump_is_counted_and_does_not_bias(make_signal, tmp_path, jump_s):
    src, truth = make_signal("base.ts", offset_ms=-90.0, duration_s=12.0)
    # two MPEG-TS segments back to back, the second with its clock moved (a splice)
    first = remux(src, tmp_path / "a.ts", drop=lambda p: packet_time(p) >= 6.0)
    second = remux(src, tmp_path / "b.ts", drop=lambda p: packet_time(p) < 6.0,
                   shift=lambda kind, t: jump_s)
    spliced = tmp_path / "spliced.ts"
    spliced.write_bytes(first.read_bytes() + second.read_bytes())
    report = check_file(str(spliced))
    assert report.stats.timestamp_jumps == 1
    assert any("timestamp jump" in w for w in report.warnings)
    assert report.offset_ms == pytest.approx(-90.0, abs=1.0)
    assert report.detail["events"] >= len(truth.flash_times) - 1  # the one at the splice may go


def test_one_packet_out_of_timestamp_order_does_not_move_the_rest(make_signal, tmp_path):
    """One AAC packet from 1.5 s back between two halves of a stream (a stale or
    repeated packet): the old clock re-based the audio on it, and the second half read
    1.5 s off (+663 ms reported for -90)."""
    src, truth = make_signal("base.ts", offset_ms=-90.0, duration_s=12.0)
    first = remux(src, tmp_path / "a.ts", drop=lambda p: packet_time(p) >= 6.0)
    stray = remux(src, tmp_path / "s.ts", drop=lambda p: not (
        p.stream.type == "audio" and 4.5 <= packet_time(p) < 4.52))
    second = remux(src, tmp_path / "b.ts", drop=lambda p: packet_time(p) < 6.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + stray.read_bytes() + second.read_bytes())
    report = check_file(str(joined))
    assert report.stats.timestamp_jumps == 0 and report.stats.timestamp_strays == 1
    assert any("out of timestamp order" in w for w in report.warnings)
    assert report.offset_ms == pytest.approx(-90.0, abs=1.0)
    assert report.detail["events"] == len(truth.flash_times)


def test_a_beep_whose_onset_was_lost_is_not_measured_late(make_signal, tmp_path):
    """A lost audio packet is filled with silence, and the frame decoded after it fades
    in: a beep that began in the hole reads up to a packet late (the 60-minute soak read
    test signals 5-37 ms off so). Such beeps are left out and counted; the rest measure
    to the sample."""
    src, truth = make_signal("sig.mkv", offset_ms=-80.0, duration_s=20.0, period_s=1.0)
    lost = truth.beep_times[3::3]  # after the start, where the detectors have warmed up
    holed = remux(src, tmp_path / "holed.mkv", drop=lambda p: p.stream.type == "audio" and any(
        packet_time(p) <= b < packet_time(p) + p.duration * p.time_base for b in lost))
    report = check_file(str(holed))
    # counted (a burst cut short enough by the hole is not a beep at all)
    assert len(lost) // 2 <= report.detail["beeps_after_lost_audio"] <= len(lost)
    assert "after lost audio" in report.why
    offsets = [w.offset_ms for w in report.windows]  # every event, outliers included
    measured = {round(w.t, 2) for w in report.windows}
    assert not measured & {round(f, 2) for f, b in zip(truth.flash_times, truth.beep_times,
                                                       strict=True) if b in lost}
    assert all(o == pytest.approx(-80.0, abs=1.0) for o in offsets), offsets
    assert report.offset_ms == pytest.approx(-80.0, abs=0.5)
