"""`avsync monitor` against a real RTSP server on 127.0.0.1, scraped over HTTP."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from avsync.cli import main
from avsync.errors import UsageError
from avsync.estimate.offset import MEASURED, NO_FACE
from avsync.estimate.tracker import LiveTracker
from avsync.monitor.config import load_config, parse_stream_arg
from avsync.monitor.run import Monitor, MonitorOptions, parse_listen
from avsync.monitor.stream import Backoff
from avsync.standards import get_standard
from tests.live import (
    HttpFolder,
    RtspServer,
    UdpSender,
    free_port,
    metric,
    rtsp_server_missing,
    scrape,
    wait_for,
)

OFFSET_S = -0.120
needs_rtsp = pytest.mark.skipif(bool(rtsp_server_missing()), reason=str(rtsp_server_missing()))


@pytest.fixture(scope="module")
def signal_clip(tmp_path_factory):
    from avsync.synth import TestSignalSpec, write_test_signal

    path = tmp_path_factory.mktemp("rtsp") / "signal.mp4"
    write_test_signal(path, TestSignalSpec(duration_s=120.0, size=(320, 180),
                                           offset_ms=OFFSET_S * 1e3))
    return path


def _monitor(streams: list[str], realtime: bool = False, transport: str = "tcp",
             **options) -> Monitor:
    specs = [parse_stream_arg(s, {"realtime": realtime, "rtsp_transport": transport})
             for s in streams]
    options.setdefault("timeout_s", 2.0)
    options.setdefault("retry_max_s", 1.0)
    return Monitor(specs, MonitorOptions(listen=("127.0.0.1", free_port()), table=False,
                                         exit_when_done=False, **options)).start()


def _url(monitor: Monitor) -> str:
    host, port = monitor.server.address
    return f"http://{host}:{port}/metrics"


def _avsync_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("avsync-")}


# -- live tracker ------------------------------------------------------------------------
def test_one_bad_window_does_not_move_the_live_offset():
    tracker = LiveTracker(get_standard("ebu-r37"))
    for t in range(10):
        tracker.add(float(t), MEASURED, -40.0 + (t % 3), 0.8, "m")
    tracker.add(10.0, MEASURED, 450.0, 0.9, "m")
    tracker.add(11.0, NO_FACE)
    est = tracker.current()
    assert est.offset_ms == pytest.approx(-39.0, abs=1.5) and est.in_tolerance
    assert tracker.outcomes[NO_FACE] == 1 and tracker.outcomes[MEASURED] == 11


def test_after_a_reconnection_nothing_is_published_until_a_second_reading_confirms():
    """The first window of a connection can read far off (the soak saw 475 ms): the
    tracker settles first, publishing only a reading that an earlier one sharing no
    media (3 s apart) confirms, and then the median of that pair, never the bad one."""
    tracker = LiveTracker(get_standard("ebu-r37"))
    for t in range(5):
        tracker.add(float(t), MEASURED, 30.0, 0.9, "m")
    assert tracker.current().offset_ms == pytest.approx(30.0)
    tracker.reset()  # a new connection
    assert tracker.current() is None and not tracker.settling
    tracker.add(10.0, MEASURED, 505.0, 0.95, "m")  # the bad first reading
    for t in (11.0, 12.0, 13.0):
        tracker.add(t, MEASURED, 31.0, 0.9, "m")
        assert tracker.current() is None and tracker.settling  # 13 vs 10: no match
    tracker.add(14.0, MEASURED, 29.0, 0.7, "m")  # confirmed by 11.0
    first = tracker.current()
    assert not tracker.settling and first.offset_ms == pytest.approx(30.0)
    assert first.confidence == pytest.approx(0.8)  # the pair's own
    tracker.add(15.0, MEASURED, 33.0, 0.9, "m")
    assert tracker.current().offset_ms == pytest.approx(31.0)  # the bad one never counts


def test_a_test_signal_settles_on_two_events_that_agree_to_the_sample():
    tracker = LiveTracker(get_standard("ebu-r37"))
    tracker.add(0.0, MEASURED, -80.0, 1.0, "test-signal")
    tracker.add(3.0, MEASURED, -40.0, 1.0, "test-signal")  # a flash seen a frame late
    assert tracker.current() is None
    tracker.add(6.0, MEASURED, -80.1, 1.0, "test-signal")
    assert tracker.current().offset_ms == pytest.approx(-80.05)


def test_one_damaged_reading_right_after_settling_does_not_move_the_published_value():
    """The median of the confirming reading and one damaged event is their mean (the
    60-minute soak published a test signal 18.7 ms off so): the pair that settled the
    tracker both count until three readings have come since."""
    tracker = LiveTracker(get_standard("ebu-r37"))
    tracker.add(0.0, MEASURED, -80.0, 1.0, "test-signal")
    tracker.add(3.0, MEASURED, -80.1, 1.0, "test-signal")
    tracker.add(4.0, MEASURED, -117.5, 1.0, "test-signal")  # a beep read with lost packets
    assert tracker.current().offset_ms == pytest.approx(-80.1)
    tracker.add(5.0, MEASURED, -79.9, 1.0, "test-signal")
    assert tracker.current().offset_ms == pytest.approx(-80.1)  # three since: their median


def test_drift_and_a_persisting_jump_are_tracked():
    tracker = LiveTracker(get_standard("ebu-r37"))
    for t in range(0, 120):
        tracker.add(float(t), MEASURED, 10.0 + t * 0.5 / 60, 0.9, "m")  # 0.5 ms/min
    assert tracker.drift_ms_per_min() == pytest.approx(0.5, abs=0.05)
    jumps = [tracker.add(120.0 + t, MEASURED, 200.0, 0.9, "m") for t in range(10)]
    found = [j for j in jumps if j is not None]
    assert len(found) == 1 and found[0].to_ms == pytest.approx(200.0)
    now = tracker.current()
    assert now.offset_ms == pytest.approx(200.0) and not now.in_tolerance


# -- configuration -----------------------------------------------------------------------
def test_backoff_stays_at_its_cap_through_any_outage():
    backoff = Backoff(base_s=1.0, max_s=30.0)
    delays = [backoff.next_delay() for _ in range(5000)]  # days of a stream down
    assert delays[0] <= 1.0 and max(delays) <= 30.0
    assert min(delays[10:]) >= 15.0  # at the cap, times the 0.5-1 jitter
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_stream_arguments_and_config_file(tmp_path):
    spec = parse_stream_arg("studio-1=rtsp://u:p@10.0.0.5/cam")
    assert spec.name == "studio-1" and spec.shown == "rtsp://***@10.0.0.5/cam"
    bare = parse_stream_arg("rtsp://10.1.1.1:9000/live?passphrase=abc")
    assert "abc" not in bare.name and "abc" not in bare.shown
    assert bare.ffmpeg_options(2.0)["timeout"] == "2000000"
    config = tmp_path / "streams.toml"
    config.write_text('[[stream]]\nname = "a"\nurl = "rtsp://h/x"\nstandard = "atsc-is191"\n'
                      'transport = "udp"\nmax_offset_ms = 1000\n')
    (a,) = load_config(config)
    assert (a.name, a.tolerance.name, a.rtsp_transport, a.max_offset_s) == \
        ("a", "atsc-is191", "udp", 1.0)
    config.write_text('[[stream]]\nurl = "x"\ncolour = "red"\n')
    with pytest.raises(UsageError, match="unknown keys colour"):
        load_config(config)
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_listen("9108")


@pytest.mark.parametrize("args", [["monitor"], ["monitor", "--listen", "nowhere"],
                                  ["monitor", "a=x.mp4", "a=y.mp4"],
                                  ["monitor", "--config", "/nonexistent.toml"]])
def test_bad_monitor_usage_is_one_line_and_exit_3(args, capsys):
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avsync: error: ")


# -- a real RTSP server ------------------------------------------------------------------
@needs_rtsp
def test_rtsp_offset_is_measured_within_10_s_and_secrets_stay_out(signal_clip, caplog):
    caplog.set_level(logging.INFO, logger="avsync")
    with RtspServer(signal_clip) as server:
        secret_url = server.url.replace("rtsp://", "rtsp://admin:hunter2@")
        started = time.monotonic()
        monitor = _monitor([f"cam={secret_url}"])
        try:
            offset = wait_for(lambda: metric(scrape(_url(monitor)), "avsync_av_offset_seconds",
                                             stream="cam"), timeout_s=10)
            elapsed = time.monotonic() - started
            page = urllib.request.urlopen(_url(monitor)).read().decode()
        finally:
            monitor.stop()
    assert offset is not None, "no offset within 10 s"
    assert offset == pytest.approx(OFFSET_S, abs=0.002) and elapsed < 10
    assert "hunter2" not in page and "admin" not in page and 'url="rtsp://***@' in page
    assert "hunter2" not in caplog.text


@needs_rtsp
def test_server_restart_reconnects_and_measures_again_without_leaking_threads(signal_clip):
    before = _avsync_threads()
    server = RtspServer(signal_clip).start()
    monitor = _monitor([f"cam={server.url}"])
    url = _url(monitor)
    try:
        assert wait_for(lambda: metric(scrape(url), "avsync_av_offset_seconds", stream="cam"),
                        10)
        server.kill()
        assert wait_for(lambda: metric(scrape(url), "avsync_stream_up", stream="cam") == 0, 15)
        server = RtspServer(signal_clip, server.port).start()
        assert wait_for(lambda: metric(scrape(url), "avsync_stream_up", stream="cam") == 1, 20)
        samples = wait_for(lambda: (lambda s: s if metric(
            s, "avsync_av_offset_seconds", stream="cam") is not None else None)(scrape(url)),
            10)
        assert samples is not None, "no offset after the reconnection"
        assert metric(samples, "avsync_reconnects_total", stream="cam") >= 1
        assert metric(samples, "avsync_av_offset_seconds", stream="cam") == \
            pytest.approx(OFFSET_S, abs=0.002)
    finally:
        monitor.stop()
        server.kill()
    assert wait_for(lambda: _avsync_threads() <= before, 5) , _avsync_threads() - before


@needs_rtsp
def test_a_broken_stream_does_not_disturb_a_good_one(signal_clip):
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing"
    with RtspServer(signal_clip) as server:
        monitor = _monitor([f"good={server.url}", f"bad={dead}"])
        try:
            offset = wait_for(lambda: metric(scrape(_url(monitor)),
                                             "avsync_av_offset_seconds", stream="good"), 10)
            samples = scrape(_url(monitor))
            bad = next(w for w in monitor.workers if w.spec.name == "bad")
        finally:
            monitor.stop()
    assert offset == pytest.approx(OFFSET_S, abs=0.002)
    assert metric(samples, "avsync_stream_up", stream="bad") == 0
    assert metric(samples, "avsync_av_offset_seconds", stream="bad") is None
    assert bad.error and "Connection refused" in bad.error
    assert metric(samples, "avsync_reconnects_total", stream="bad") >= 1


@needs_rtsp
def test_rtsp_over_udp_transport(signal_clip):
    with RtspServer(signal_clip) as server:
        monitor = _monitor([f"cam={server.url}"], transport="udp")
        try:
            offset = wait_for(lambda: metric(scrape(_url(monitor)),
                                             "avsync_av_offset_seconds", stream="cam"), 10)
        finally:
            monitor.stop()
    assert offset == pytest.approx(OFFSET_S, abs=0.002)


def _hls_vod(tmp_path) -> Path:
    """A 20 s test signal (+75 ms) as a VOD HLS playlist with 2 s segments."""
    import av

    from avsync.synth import TestSignalSpec, write_test_signal

    src = tmp_path / "src.mp4"
    write_test_signal(src, TestSignalSpec(duration_s=20.0, size=(320, 180), offset_ms=75.0))
    folder = tmp_path / "hls"
    folder.mkdir()
    with av.open(str(src)) as i, av.open(str(folder / "index.m3u8"), "w", format="hls",
                                         options={"hls_time": "2", "hls_list_size": "0",
                                                  "hls_playlist_type": "vod"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                o.mux(packet)
    return folder


def test_hls_over_http(tmp_path):
    with HttpFolder(_hls_vod(tmp_path)) as http:
        # a VOD playlist is finite: a player (and a monitor) takes it at media speed
        monitor = _monitor([f"web={http.url}/index.m3u8"], realtime=True)
        try:
            offset = wait_for(lambda: metric(scrape(_url(monitor)),
                                             "avsync_av_offset_seconds", stream="web"), 10)
        finally:
            monitor.stop()
    assert offset == pytest.approx(0.075, abs=0.002)


def test_a_recording_read_unpaced_is_named_as_such(tmp_path):
    # read unpaced, the 20 s playlist is gone in a moment and would be reconnected over
    # and over with the offset showing only in between: the stream's error says why
    with HttpFolder(_hls_vod(tmp_path)) as http:
        monitor = _monitor([f"web={http.url}/index.m3u8"])
        try:
            worker = monitor.workers[0]
            error = wait_for(lambda: worker.error if worker.error else None, 10)
        finally:
            monitor.stop()
    assert error and "recording" in error and "realtime" in error


def test_udp_mpeg_ts(tmp_path):
    from avsync.synth import TestSignalSpec, write_test_signal

    ts = tmp_path / "feed.ts"
    write_test_signal(ts, TestSignalSpec(duration_s=20.0, size=(320, 180), offset_ms=-45.0,
                                         video_codec="mpeg2", audio_codec="mp2"))
    port = free_port()
    monitor = _monitor([f"mux=udp://127.0.0.1:{port}"])
    try:
        time.sleep(0.5)  # the monitor binds the port first, as a receiver would
        with UdpSender(ts, port, duration_s=20.0):
            offset = wait_for(lambda: metric(scrape(_url(monitor)),
                                             "avsync_av_offset_seconds", stream="mux"), 12)
    finally:
        monitor.stop()
    assert offset == pytest.approx(-0.045, abs=0.002)


def test_head_and_healthz_answer(signal_clip):
    monitor = _monitor([f"file={signal_clip}"])
    try:
        host, port = monitor.server.address
        head = urllib.request.urlopen(urllib.request.Request(_url(monitor), method="HEAD"))
        assert head.status == 200 and head.read() == b""
        assert urllib.request.urlopen(f"http://{host}:{port}/healthz").read() == b"ok\n"
    finally:
        monitor.stop()


def test_sigterm_stops_the_monitor_within_2_s(signal_clip):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "avsync", "monitor", f"s={signal_clip}",
                             "--realtime", "-q", "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: metric(scrape(f"http://127.0.0.1:{port}/metrics"),
                                       "avsync_stream_up", stream="s") == 1
                        if proc.poll() is None else True, 15)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(5)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert code == 0 and took < 2.0, (code, took, proc.stderr.read())


def test_a_capture_source_camera_and_microphone(tmp_path):
    """Camera through PyAV (FFmpeg's lavfi device, flashing every 3 s, paced in real
    time) and microphone through sounddevice (ALSA's file plugin gives PortAudio a
    capture device that plays a raw file). The plumbing only: ALSA's null plugin does
    not pace the microphone in real time, so no offset is asserted."""
    from urllib.parse import quote

    import numpy as np

    rate = 16_000
    beeps = np.zeros(30 * rate, np.float32)
    for start in np.arange(0.5, 30, 3.0):
        at = int(start * rate)
        beeps[at : at + 1600] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(1600) / rate)
    (beeps * 32767).astype("<i2").tofile(tmp_path / "in.raw")
    (tmp_path / ".asoundrc").write_text(
        f'pcm.!default {{ type file slave.pcm "nul" file "/dev/null" '
        f'infile "{tmp_path / "in.raw"}" format "raw" }}\npcm.nul {{ type null }}\n')
    camera = ("color=c=black:size=320x180:rate=25,"
              "geq=lum='if(lt(mod(T,3),0.04),235,16)':cb=128:cr=128,realtime")
    url = f"capture:?video={quote(camera, safe='')}&format=lavfi&audio=default"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "avsync", "monitor", f"cap={url}", "-q",
                             "--listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE,
                            text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        samples = wait_for(lambda: (lambda s: s if (metric(s, "avsync_windows_total",
                                                           stream="cap", outcome="no_face")
                                                    or 0) >= 3 else None)(scrape(metrics)), 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    assert samples, proc.stderr.read()
    assert metric(samples, "avsync_stream_up", stream="cap") == 1
    assert metric(samples, "avsync_video_frames_total", stream="cap") >= 50
    assert metric(samples, "avsync_audio_samples_total", stream="cap") >= rate


def test_the_table_shows_each_stream_with_its_verdict():
    import threading as th

    from avsync.monitor.stream import UP, StreamWorker
    from avsync.monitor.view import table

    stop = th.Event()
    good = StreamWorker(parse_stream_arg("studio=rtsp://u:p@h/x"), stop)
    good.state = UP
    for t in range(5):
        good.tracker.add(float(t), MEASURED, -90.0, 0.85, "lipsync-model")
    down = StreamWorker(parse_stream_arg("remote=udp://h:9000"), stop)
    down.state, down.error = "down", "Connection refused"
    lines = table([good, down]).splitlines()
    assert lines[0].split()[:3] == ["STREAM", "STATE", "OFFSET"]
    assert lines[1].split()[:4] == ["studio", "up", "-90", "ms"]
    assert "OUT audio 90.0 ms late" in lines[1] and "0.85" in lines[1]
    assert lines[2].split()[:2] == ["remote", "down"] and "Connection refused" in lines[2]
    assert "u:p" not in "\n".join(lines)


def test_json_log_lines_for_log_shippers(signal_clip):
    import json

    proc = subprocess.run([sys.executable, "-m", "avsync", "monitor", f"s={signal_clip}", "-q",
                           "--log-format", "json", "--listen", f"127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr  # a file read to its end: the monitor ends
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert {"time", "level", "message"} <= set(records[0])
    assert any(r["message"] == "s: file read to the end" for r in records)
