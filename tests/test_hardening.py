"""Never crash, never lie, never leak: bad options, bad URLs, silent servers,
credentials in every form, ambiguous signals and unsure verdicts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avsync.cli import main
from avsync.media.redact import redact_text, redact_url
from tests.live import HttpFolder, SilentServer, free_port, scrape, wait_for

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def run_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsync", *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def one_line_error(result: subprocess.CompletedProcess, code: int = 3) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- option values ------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [
    ["--tone-hz", "0"], ["--tone-hz", "-5"], ["--tone-hz", "30000"], ["--tone-hz", "nan"],
    ["--window", "inf", "--hop", "inf"], ["--window", "0.1"], ["--hop", "0"],
    ["--max-offset", "-5"], ["--max-offset", "10"], ["--min-confidence", "1.5"],
    ["--timeout", "-1"],
])
def test_every_check_option_is_validated_with_exit_3(make_signal, flags):
    path, _ = make_signal(duration_s=2.0)
    line = one_line_error(run_cli("check", str(path), *flags))
    assert line.startswith("avsync: error: argument " + flags[0]), line
    assert "use " in line  # the allowed range is said


def test_a_negative_range_reads_plainly(make_signal):
    path, _ = make_signal(duration_s=2.0)
    line = one_line_error(run_cli("check", str(path), "--max-offset", "-5"))
    assert "use 40 to 2000 ms, not -5" in line and "+--" not in line


@pytest.mark.parametrize("args", [
    ["generate", "o.mp4", "--duration", "inf"], ["generate", "o.mp4", "--offset", "nan"],
    ["generate", "o.mp4", "--drift-ppm", "inf"], ["generate", "o.mp4", "--period", "inf"],
    ["generate", "o.mp4", "--audio-bitrate", "-1"], ["demo", "--offset", "inf"],
    ["monitor", "x.mp4", "--timeout", "-1"], ["monitor", "x.mp4", "--retry-max", "inf"],
    ["train", ".", "--steps", "0"],
])
def test_every_other_numeric_option_is_validated(tmp_path, args):
    line = one_line_error(run_cli(*args, cwd=tmp_path))
    assert "use " in line, line
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("tolerance", ["nan,nan", "inf,-inf", "+40,nan"])
def test_a_tolerance_that_is_not_a_number_is_refused(make_signal, tolerance):
    path, _ = make_signal(duration_s=2.0)
    line = one_line_error(run_cli("check", str(path), "--tolerance", tolerance))
    assert "LEAD and LAG must be numbers" in line, line


def test_a_model_that_is_not_a_sync_model_is_refused_up_front(make_signal, tmp_path):
    path, _ = make_signal(duration_s=2.0)
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    line = one_line_error(run_cli("check", str(path), "--model", str(text)))
    assert "not a loadable ONNX model" in line
    line = one_line_error(run_cli("monitor", str(path), "--model", str(text)))
    assert "not a loadable ONNX model" in line


def test_an_internal_error_has_its_own_exit_code_and_one_line(make_signal, monkeypatch,
                                                              capsys):
    # a bug cannot be produced by a real part on purpose: this is the one fault mocked
    import avsync.check

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(avsync.check, "check_file", broken)
    path, _ = make_signal(duration_s=2.0)
    assert main(["check", str(path)]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("avsync: internal error: ZeroDivisionError")


# -- inputs that can never open: refused at start ------------------------------------------
@pytest.mark.parametrize("url, says", [
    ("rtsp//nohost", "a URL? write rtsp://"), ("rtsp://", "no host"),
    ("host:notaport", "give the protocol"), ("ftp://example.net/x.ts", "unsupported protocol"),
    ("srt://127.0.0.1:9000", "SRT is not supported"), ("rtsp://h:99999/x", "malformed URL"),
    ("udp://239.0.0.1", "needs a port"),
])
def test_permanent_mistakes_fail_fast_in_check_and_monitor(tmp_path, url, says):
    for args in (["check", url], ["monitor", f"s={url}", "--listen",
                                  f"127.0.0.1:{free_port()}"]):
        started = time.monotonic()
        line = one_line_error(run_cli(*args, cwd=tmp_path, timeout=30))
        assert says in line, line
        assert time.monotonic() - started < 15  # refused, not retried


def test_the_toml_file_is_held_to_the_command_line_rules(tmp_path):
    config = tmp_path / "streams.toml"
    for body, says in [
        ('url = "rtsp://h/x"\nmax_offset_ms = 100000', "max_offset_ms: use 40 to 2000 ms"),
        ('url = "ftp://h/x"', "unsupported protocol"),
        ('url = "rtsp://h/x"\nrealtime = "yes"', "realtime must be true or false"),
        ('url = 5', "url must be a string"),
    ]:
        config.write_text(f"[[stream]]\n{body}\n")
        line = one_line_error(run_cli("monitor", "--config", str(config), "--listen",
                                      f"127.0.0.1:{free_port()}", timeout=30))
        assert "stream 1" in line and says in line, line


def test_a_silent_server_is_reported_as_a_timeout(tmp_path):
    with SilentServer() as server:
        for scheme in ("rtsp", "http"):
            url = f"{scheme}://127.0.0.1:{server.port}/live"
            line = one_line_error(run_cli("check", url, "--timeout", "2", timeout=60))
            assert "timed out after 2 s waiting for data" in line, line


def test_a_silent_server_is_a_timeout_in_the_monitor_too(tmp_path):
    from avsync.monitor.config import parse_stream_arg
    from avsync.monitor.run import Monitor, MonitorOptions

    with SilentServer() as server:
        spec = parse_stream_arg(f"quiet=rtsp://127.0.0.1:{server.port}/live")
        monitor = Monitor([spec], MonitorOptions(listen=("127.0.0.1", free_port()),
                                                 table=False, exit_when_done=False,
                                                 timeout_s=1.0, retry_max_s=0.5)).start()
        try:
            worker = monitor.workers[0]
            assert wait_for(lambda: worker.errors.get("timeout"), 20), worker.error
            assert "timed out after 1 s waiting for data" in worker.error
            host, port = monitor.server.address
            samples = scrape(f"http://{host}:{port}/metrics")
            key = ("avsync_stream_errors_total", (("reason", "timeout"), ("stream", "quiet")))
            assert samples[key] >= 1
        finally:
            monitor.stop()


# -- the monitor keeps every stream ----------------------------------------------------------
def test_a_stream_thread_that_dies_is_restarted_and_counted(monkeypatch):
    from avsync.monitor.config import parse_stream_arg
    from avsync.monitor.run import Monitor, MonitorOptions
    from avsync.monitor.stream import Backoff

    # the fault: a bug outside the per-connection error handling (as the back-off
    # overflow was). No real input produces it, so it is injected, once.
    calls = {"n": 0}
    real = Backoff.next_delay

    def buggy(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OverflowError("(34, 'Numerical result out of range')")
        return real(self)

    monkeypatch.setattr(Backoff, "next_delay", buggy)
    spec = parse_stream_arg(f"flaky=rtsp://127.0.0.1:{free_port()}/none")
    monitor = Monitor([spec], MonitorOptions(listen=("127.0.0.1", free_port()), table=False,
                                             exit_when_done=False, timeout_s=1.0,
                                             retry_max_s=0.2)).start()
    try:
        worker = monitor.workers[0]
        assert wait_for(lambda: worker.died, 10)  # the thread is gone...
        # ...and the monitor's loop (once a second) brings it back after a short pause
        assert wait_for(lambda: (monitor.supervise(), worker.restarts)[1] == 1, 5)
        assert worker.alive
        assert wait_for(lambda: worker.reconnects >= 2, 15)  # measuring again (retrying)
        host, port = monitor.server.address
        samples = scrape(f"http://{host}:{port}/metrics")
        key = ("avsync_stream_errors_total", (("reason", "worker_restart"), ("stream", "flaky")))
        assert samples[key] == 1
        refused = ("avsync_stream_errors_total", (("reason", "refused"), ("stream", "flaky")))
        assert samples[refused] >= 2
    finally:
        monitor.stop()


# -- secrets --------------------------------------------------------------------------------
SECRETS = ["S3cretA", "PW9tail", "K3yVal", "5igVal", "AKIAcred", "Unk0wn", "T0kenOnly",
           "pct%40sec", "pct@sec"]


def credential_forms(host: str) -> list[str]:
    """Every way a credential rides in a URL that users have put in front of us."""
    return [
        f"rtsp://admin:S3cretA@PW9tail@{host}/live",  # a raw '@' in the password
        f"http://{host}/live.m3u8?api_key=K3yVal",
        f"https://{host}/x.m3u8?X-Amz-Signature=5igVal&X-Amz-Credential=AKIAcred",
        f"rtsp://{host}/cam?whatever=Unk0wn&transport=tcp",  # an unknown parameter
        f"rtsp://T0kenOnly@{host}/cam",  # a user name that is a token
        f"rtsp://user:pct%40sec@{host}/cam",  # percent-encoded
    ]


def assert_clean(text: str, where: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} leaks {leaked}: {text[:2000]}"


def test_malformed_and_odd_urls_hide_their_secrets_too():
    for url in ["rtsp//admin:S3cretA@cam/live", "admin:S3cretA@cam:554/live",
                "rtsp://user:S3c?retA@host/x", "rtsp://u:S3c/?retA@host/",
                "rtmp://a.rtmp.example.com/live2/S3cretA"]:
        assert "S3cret" not in redact_url(url), url
    line = one_line_error(run_cli("check", "rtsp//admin:S3cretA@cam/live"))
    assert "S3cret" not in line and "a URL?" in line
    # argparse repeats a stray argument word for word: the error line is redacted too
    line = one_line_error(run_cli("demo", "rtsp://user:S3cretA@cam/live"))
    assert "S3cret" not in line and "rtsp://***@cam/live" in line
    from avsync.monitor.config import default_name
    assert "S3cret" not in default_name("rtmp://a.rtmp.example.com/live2/S3cretA")


def test_stream_errors_are_labelled_by_what_happened_not_by_the_url():
    from avsync.monitor.stream import error_reason

    assert error_reason("udp://239.0.0.1:1234?timeout=5000000: Connection refused") \
        == "refused"
    assert error_reason("rtsp://h:4403/x: Connection reset by peer") == "unreachable"
    assert error_reason("rtsp://h/x: Server returned 5XX Server Error reply") == "other"


def test_toml_values_of_the_wrong_type_are_usage_errors(tmp_path):
    config = tmp_path / "streams.toml"
    for body in ('url = "rtsp://h/x"\nstandard = 5', 'url = "rtsp://h/x"\ntolerance = 40'):
        config.write_text(f"[[stream]]\n{body}\n")
        line = one_line_error(run_cli("monitor", "--config", str(config), "--listen",
                                      f"127.0.0.1:{free_port()}", timeout=30))
        assert "must be a string" in line


def test_file_urls_are_files(make_signal):
    path, _ = make_signal(offset_ms=-40.0, duration_s=4.0)
    for url in (f"file://{path}", f"file:{path}"):
        result = run_cli("check", url, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["offset_ms"] == pytest.approx(-40.0, abs=1.0)


def test_redaction_hides_the_whole_userinfo_and_every_query_value():
    for url in credential_forms("127.0.0.1:554"):
        assert_clean(redact_url(url), url)
        assert "127.0.0.1:554" in redact_url(url)  # the host stays: it is what users debug
        assert_clean(redact_text(f"opening {url}: Connection refused"), url)
    assert redact_url("rtsp://h/x?transport=tcp") == "rtsp://h/x?transport=tcp"
    assert redact_text("rtsp://h/x?key=abc: refused") == "rtsp://h/x?key=***: refused"


def test_no_credential_form_leaks_into_logs_metrics_reports_or_errors(make_signal, tmp_path):
    clip, _ = make_signal(offset_ms=-40.0, duration_s=4.0)
    dead = f"127.0.0.1:{free_port()}"
    with HttpFolder(clip.parent) as http:
        served = http.url.split("//", 1)[1]
        # a report of a URL that works, and the error of one that does not
        ok = run_cli("check", f"http://user:S3cretA@PW9tail@{served}/{clip.name}"
                     "?api_key=K3yVal&X-Amz-Signature=5igVal", "--json")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["offset_ms"] == pytest.approx(-40.0, abs=1.0)
        assert_clean(ok.stdout + ok.stderr, "check --json")
    for url in credential_forms(dead):
        result = run_cli("check", url, "--timeout", "2")
        assert result.returncode == 3
        assert_clean(result.stdout + result.stderr, "check error")
    # the monitor: text logs, JSON logs and /metrics, all streams down and retrying
    streams = [f"s{i}={url}" for i, url in enumerate(credential_forms(dead))]
    for log_format in ("text", "json"):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "avsync", "monitor", *streams, "-q",
                                 "--log-format", log_format, "--listen", f"127.0.0.1:{port}",
                                 "--timeout", "1", "--retry-max", "0.5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            assert wait_for(lambda url=metrics_url: scrape(url), 20), "no metrics"
            time.sleep(3)  # a few failures each
            page = _get(metrics_url)
            assert "avsync_stream_info" in page
            assert_clean(page, "/metrics")
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        assert "down (" in err
        assert_clean(out + err, f"monitor {log_format} logs")


@pytest.mark.slow
def test_the_monitor_stops_within_2_s_every_time_even_with_streams_stuck_in_a_read():
    """SIGINT with a stalled RTSP server, a stalled HTTP server and a refused port: 50
    stops, no crash (the interpreter's teardown beside a thread blocked in FFmpeg once
    segfaulted, exit 139) and none slower than the promised 2 s (18 of 49 were)."""
    import random

    rng = random.Random(0)
    slow, failed = [], []
    with SilentServer() as rtsp, SilentServer() as http:
        refused = free_port()
        for i in range(50):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "avsync", "monitor",
                 f"stalled_rtsp=rtsp://127.0.0.1:{rtsp.port}/live",
                 f"stalled_http=http://127.0.0.1:{http.port}/live.ts",
                 f"refused=rtsp://127.0.0.1:{refused}/live", "-q",
                 "--listen", f"127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                assert wait_for(lambda p=port: scrape(f"http://127.0.0.1:{p}/metrics"), 60)
                time.sleep(rng.uniform(0.0, 2.0))  # anywhere in the opens and retries
                sent = time.monotonic()
                proc.send_signal(signal.SIGINT)
                err = proc.communicate(timeout=30)[1]
            finally:
                proc.kill()
            took = time.monotonic() - sent
            if proc.returncode != 0:
                failed.append((i, proc.returncode, err[-300:]))
            if took > 2.0:
                slow.append((i, round(took, 2)))
    assert not failed, failed
    assert not slow, slow


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


# -- honest answers -------------------------------------------------------------------------
def test_a_beep_half_a_period_from_its_flash_is_unmeasured(make_signal, capsys):
    # +-1000 ms are equally likely with a 2 s period; averaging them said "0 ms, in sync"
    path, _ = make_signal(offset_ms=990.0, period_s=2.0, duration_s=12.0)
    assert main(["check", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "unmeasured" and report["offset_ms"] is None
    assert report["drift_ms_per_min"] is None
    assert "ambiguous test signal" in report["reason"]


def test_below_the_confidence_bar_a_lip_sync_verdict_is_uncertain(tmp_path, capsys):
    from avsync.synth import TalkingHeadSpec, write_talking_head

    head = tmp_path / "head.mp4"
    # 2.5 s: one short window, so a confidence below 1 leaves room for a bar above it
    write_talking_head(head, TalkingHeadSpec(offset_ms=120.0, duration_s=2.5))
    assert main(["check", str(head), "--json", "--min-confidence", "0"]) == 1
    sure = json.loads(capsys.readouterr().out)
    assert sure["verdict"] == "fail" and sure["confidence"] < 0.999
    # the same estimate against a bar above its confidence: reported, not judged
    bar = min(1.0, sure["confidence"] + 0.001)
    assert main(["check", str(head), "--json", "--min-confidence", str(bar)]) == 2
    unsure = json.loads(capsys.readouterr().out)
    assert unsure["verdict"] == "uncertain" and unsure["offset_ms"] == sure["offset_ms"]
    assert "would fail" in unsure["reason"] and "--min-confidence" in unsure["reason"]
    assert main(["check", str(head), "--min-confidence", str(bar)]) == 2
    assert "UNCERTAIN" in capsys.readouterr().out


# -- small things users hit -------------------------------------------------------------------
def test_shift_audio_tool_writes_the_shift_it_promises(make_signal, tmp_path):
    src, _ = make_signal(offset_ms=0.0, duration_s=8.0)
    out = tmp_path / "shifted.mkv"
    done = subprocess.run([sys.executable, str(TOOLS / "shift_audio.py"), str(src), str(out),
                           "120"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.exists()
    result = run_cli("check", str(out), "--json")
    assert json.loads(result.stdout)["offset_ms"] == pytest.approx(120.0, abs=1.0)
    missing = subprocess.run([sys.executable, str(TOOLS / "shift_audio.py"), "nope.mp4",
                              str(out), "120"], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_the_compose_file_runs_a_monitor_on_the_example_streams():
    import yaml

    from avsync.cli import build_parser
    from avsync.monitor.config import load_config

    grafana = Path(__file__).resolve().parents[1] / "grafana"
    compose = yaml.safe_load((grafana / "docker-compose.yml").read_text())
    command = compose["services"]["avsync"]["command"]
    args = build_parser().parse_args(command)
    assert args.command == "monitor" and args.config == "/config/streams.toml"
    mounted = compose["services"]["avsync"]["volumes"][0].split(":")[0]
    assert mounted == "./streams.toml"
    specs = load_config(grafana / "streams.example.toml")
    assert len(specs) >= 2 and len({s.name for s in specs}) == len(specs)


# -- what users film ----------------------------------------------------------------------------
def _decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].codec_context.sample_rate
    mono = np.concatenate([f.reshape(-1) if f.shape[0] == 1 else f.mean(0) for f in frames])
    return mono.astype(np.float32), rate


def _with_tracks(src: Path, dst: Path, tracks: list[np.ndarray], rate: int,
                 display_rotation: int = 0) -> Path:
    """src's video (turned and tagged with a display rotation when asked) with the given
    mono tracks as AAC audio streams, in that order."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        turn = display_rotation // 90
        w, h = vin.codec_context.width, vin.codec_context.height
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height = (h, w) if turn % 2 else (w, h)
        vout.pix_fmt = "yuv420p"
        if display_rotation:
            vout.set_display_rotation(display_rotation)
        aouts = []
        for _ in tracks:
            a = out.add_stream("aac", rate=rate)
            a.layout = "mono"
            aouts.append(a)
        for i, frame in enumerate(inp.decode(vin)):
            # stored turned the other way: a player turning it by the tag shows it upright
            img = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), -turn))
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 1) / vin.average_rate
            out.mux(vout.encode(f))
        out.mux(vout.encode(None))
        for a, samples in zip(aouts, tracks, strict=True):
            for at in range(0, len(samples), 1024):
                f = av.AudioFrame.from_ndarray(samples[None, at:at + 1024].copy(), format="flt",
                                               layout="mono")
                f.sample_rate, f.pts, f.time_base = rate, at, Fraction(1, rate)
                out.mux(a.encode(f))
            out.mux(a.encode(None))
    return dst


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    from avsync.synth import TalkingHeadSpec, write_talking_head

    path = tmp_path_factory.mktemp("head") / "head.mp4"
    write_talking_head(path, TalkingHeadSpec(offset_ms=-120.0, duration_s=8.0))
    return path


def _check_json(path: Path, *flags: str) -> dict:
    result = run_cli("check", str(path), "--json", "--min-confidence", "0", *flags)
    assert result.returncode in (0, 1, 2), result.stderr
    return json.loads(result.stdout)


def test_a_phone_clip_stored_rotated_is_measured_like_the_upright_one(head, tmp_path):
    speech, rate = _decoded_audio(head)
    upright = _check_json(_with_tracks(head, tmp_path / "upright.mp4", [speech], rate))
    assert upright["offset_ms"] == pytest.approx(-120.0, abs=40.0)
    for angle in (90, -90):
        turned = _check_json(_with_tracks(head, tmp_path / f"r{angle}.mp4", [speech], rate,
                                          display_rotation=angle))
        assert turned["detail"]["windows_by_status"] == upright["detail"]["windows_by_status"]
        assert turned["offset_ms"] == pytest.approx(upright["offset_ms"], abs=20.0), angle


def test_of_several_audio_tracks_the_one_with_speech_is_measured(head, tmp_path):
    speech, rate = _decoded_audio(head)
    hum = (0.05 * np.sin(2 * np.pi * 50 * np.arange(len(speech)) / rate)).astype(np.float32)
    clip = _with_tracks(head, tmp_path / "two.mp4", [hum, speech], rate)
    chosen = _check_json(clip)
    assert chosen["media"]["audio"]["track"] == 2 and chosen["media"]["audio"]["tracks"] == 2
    assert chosen["media"]["audio"]["chosen_by"] == "speech"
    assert chosen["offset_ms"] == pytest.approx(-120.0, abs=40.0)
    forced = _check_json(clip, "--audio-track", "1")
    assert forced["media"]["audio"]["track"] == 1 and forced["offset_ms"] is None
    text = run_cli("check", str(clip))
    assert "audio track 2 of 2, the one with speech" in text.stdout
    line = one_line_error(run_cli("check", str(clip), "--audio-track", "3"))
    assert "the file has 2 audio tracks" in line
