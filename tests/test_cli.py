"""The command line as users and pipelines meet it: output, exit codes, bad input."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avsync.cli import main
from avsync.progress import ProgressBar
from tests.helpers import corrupt_middle, remux


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsync", *args], capture_output=True,
                          text=True, timeout=120)


def test_json_report_schema_and_values(make_signal, capsys):
    path, truth = make_signal(offset_ms=-120.0, duration_s=10.0)
    code = main(["check", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # -120 ms is outside EBU R37's -60 ms
    assert report["schema"] == 1
    assert report["method"] == "test-signal"
    assert report["verdict"] == "fail"
    assert report["standard"] == {"name": "ebu-r37", "lead_ms": 40.0, "lag_ms": -60.0}
    assert report["offset_ms"] == pytest.approx(-120.0, abs=1.0)
    assert report["offset_frames"] == pytest.approx(-3.0, abs=0.03)
    assert 0.9 <= report["confidence"] <= 1.0
    assert report["drift_ms_per_min"] == pytest.approx(0.0, abs=0.5)
    assert report["duration_s"] == pytest.approx(10.0, abs=0.1)
    assert report["analysed_s"] == pytest.approx(10.0, abs=0.1)
    assert [w["t"] for w in report["windows"]] == pytest.approx(truth.flash_times, abs=1e-3)
    assert {w["status"] for w in report["windows"]} == {"measured"}


@pytest.mark.parametrize(
    "offset, flags, code",
    [(-120.0, [], 1), (-120.0, ["--standard", "itu-r-bt1359"], 0), (30.0, [], 0),
     (30.0, ["--standard", "atsc-is191"], 1), (30.0, ["--tolerance", "+25,-10"], 1),
     (-8.0, ["--tolerance", "+25,-10"], 0)],
)
def test_exit_code_follows_the_tolerance(make_signal, capsys, offset, flags, code):
    path, _ = make_signal(offset_ms=offset, duration_s=5.0)
    assert main(["check", str(path), *flags]) == code
    capsys.readouterr()


def test_human_report_says_the_offset_in_words_and_frames(make_signal, capsys):
    path, _ = make_signal(offset_ms=-80.0, duration_s=5.0)
    main(["check", str(path)])
    out = capsys.readouterr().out
    assert "audio 80.0 ms late (offset -80.0 ms, -2.00 frames)" in out
    assert "PASS" not in out and "FAIL - outside EBU R37 (+40/-60 ms)" in out

    path, _ = make_signal("lead.mp4", offset_ms=30.0, duration_s=5.0)
    main(["check", str(path)])
    assert "audio leads by 30.0 ms (offset +30.0 ms, +0.75 frames)" in capsys.readouterr().out


def test_drift_that_leaves_the_band_fails_even_if_the_mean_is_inside(make_signal, capsys):
    # 0 ms at the middle, 2000 ppm: about +-60 ms at the ends of a 60 s file
    path, _ = make_signal(offset_ms=60.0, drift_ppm=-2000.0, duration_s=60.0, size=(96, 64))
    assert main(["check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert -40 < report["offset_ms"] < 40
    assert report["drift_ms_per_min"] == pytest.approx(-120.0, rel=0.05)
    assert "drift takes the offset" in report["reason"]


def test_no_test_signal_and_no_face_exits_2_with_the_reason(tmp_path, capsys):
    path = tmp_path / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        for _ in range(50):
            img = rng.integers(60, 120, (48, 64, 3), np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        for i in range(0, 32000, 1024):
            fr = av.AudioFrame.from_ndarray(rng.normal(0, 0.1, (1, 1024)).astype(np.float32),
                                            format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i
            out.mux(a.encode(fr))
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    assert main(["check", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "unmeasured" and report["offset_ms"] is None
    assert report["method"] == "lipsync-model"  # no beep: the default lip-sync path was tried
    assert report["reason"] == "no face found"
    assert {w["status"] for w in report["windows"]} == {"no_face"}


def test_plot_draws_the_timeline(make_signal, tmp_path, capsys):
    path, _ = make_signal(offset_ms=-20.0, duration_s=8.0)
    png = tmp_path / "timeline.png"
    assert main(["check", str(path), "--plot", str(png)]) == 0
    capsys.readouterr()
    import matplotlib.image

    img = matplotlib.image.imread(str(png))
    assert img.shape[:2] == (400, 1000)
    # the tolerance band is drawn: a light green tint covers a good part of the plot
    greenish = (img[..., 1] > img[..., 0] + 0.03) & (img[..., 1] > img[..., 2] + 0.03)
    assert greenish.mean() > 0.05


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to fill")
def test_an_output_that_cannot_be_written_keeps_the_result_and_says_so(make_signal):
    # /dev/full: every write fails with "No space left on device", a real full disk
    path, _ = make_signal(offset_ms=-20.0, duration_s=8.0)
    result = run_cli("check", str(path), "--json", "--html", "/dev/full")
    assert result.returncode == 3
    assert json.loads(result.stdout)["offset_ms"] == pytest.approx(-20.0, abs=1.0)
    errors = [line for line in result.stderr.splitlines() if "--html /dev/full" in line]
    assert len(errors) == 1 and "could not write it" in errors[0]
    assert "Traceback" not in result.stderr


def _bad_inputs(tmp: Path, good: Path) -> dict[str, Path]:
    files = {"missing": tmp / "missing.mp4", "directory": tmp / "empty-folder"}
    files["directory"].mkdir()  # a folder is many inputs: one without media is an error
    files["empty"] = tmp / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["text"] = tmp / "text.mp4"
    files["text"].write_text("this is not a video\n" * 50)
    files["truncated"] = tmp / "truncated.mp4"
    data = good.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["audio_only"] = remux(good, tmp / "audio.m4a", drop=lambda p: p.stream.type == "video")
    files["video_only"] = remux(good, tmp / "video.mp4", drop=lambda p: p.stream.type == "audio")
    files["device"] = Path("/dev/zero")  # its size reads 0, but it is not empty
    files["pipe"] = tmp / "pipe.mp4"
    os.mkfifo(files["pipe"])  # a pipe with no writer: opening it would wait for ever
    return files


def test_bad_input_gives_one_line_and_exit_3(make_signal, tmp_path):
    good, _ = make_signal(duration_s=4.0)
    expected = {"missing": "no such file", "directory": "no media files",
                "empty": "file is empty", "text": "not a readable media file",
                "truncated": "not a readable media file", "audio_only": "no video stream",
                "video_only": "no audio stream", "device": "is a device, not a media file",
                "pipe": "is a pipe, not a media file"}
    for kind, path in _bad_inputs(tmp_path, good).items():
        result = run_cli("check", str(path))
        assert result.returncode == 3, kind
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (kind, result.stderr)
        assert lines[0].startswith("avsync: error: ") and expected[kind] in lines[0], kind
        assert result.stdout == ""


@pytest.mark.parametrize("args", [["check", "x.mp4", "--bogus"], ["chek", "x.mp4"],
                                  ["check", "x.mp4", "--standard", "smpte"],
                                  ["check", "x.mp4", "--tolerance", "40"],
                                  ["generate", "o.mp4", "--fps", "abc"],
                                  ["generate", "o.mp4", "--size", "100"],
                                  ["generate", "o.mp4", "--codec", "nonsense"],
                                  ["check", "x.mp4", "--method", "guess"],
                                  ["check", "x.mp4", "--max-offset", "3000"],
                                  ["check", "x.mp4", "--window", "1", "--hop", "2"]])
def test_bad_flags_give_one_line_and_exit_3(tmp_path, args):
    result = subprocess.run([sys.executable, "-m", "avsync", *args], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "x.mp4" not in result.stderr  # refused for the flag, before the file is opened


def test_corrupt_packets_are_skipped_and_reported(make_signal, tmp_path):
    good, _ = make_signal(offset_ms=-45.0, duration_s=12.0, size=(320, 180))
    bad = corrupt_middle(good, tmp_path / "corrupt.mp4")
    result = run_cli("check", str(bad), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stats"]["decode_errors"] > 0
    assert report["offset_ms"] == pytest.approx(-45.0, abs=1.0)
    assert "corrupt packets skipped" in result.stderr
    assert "Traceback" not in result.stderr


def test_cut_file_with_index_up_front_measures_what_is_there(make_signal, tmp_path):
    good, _ = make_signal(offset_ms=-30.0, duration_s=12.0)
    fast = remux(good, tmp_path / "fast.mp4", options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    result = run_cli("check", str(cut), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0
    assert report["offset_ms"] == pytest.approx(-30.0, abs=1.0)
    assert "truncated?" in result.stderr


def test_generate_writes_what_it_says(tmp_path, capsys):
    out = tmp_path / "g.mp4"
    assert main(["generate", str(out), "--offset", "80", "--duration", "6", "--fps", "29.97",
                 "--size", "320x240"]) == 0
    assert "offset +80 ms" in capsys.readouterr().out
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (320, 240)
        assert float(v.average_rate) == pytest.approx(29.97, abs=0.01)
        assert c.duration / av.time_base == pytest.approx(6.0, abs=0.1)
    assert main(["check", str(out), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["offset_ms"] == pytest.approx(80.0, abs=1.0)


def test_progress_bar_draws_and_clears():
    import io

    buf = io.StringIO()
    bar = ProgressBar("checking", stream=buf)
    bar(30.0, 60.0)
    assert "50%" in buf.getvalue() and "30.0/60.0 s" in buf.getvalue()
    bar.close()
    assert buf.getvalue().endswith("\r\033[K")


def test_demo_measures_both_generated_clips(tmp_path, capsys):
    assert main(["demo", "--offset", "-40", "--head-offset", "160", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    signal = re.search(r"test signal +injected -40.0 ms, measured ([-+.\d]+) ms", out)
    head = re.search(r"talking head +injected \+160.0 ms, measured ([-+.\d]+) ms", out)
    assert signal and abs(float(signal.group(1)) + 40) < 1
    assert head and abs(float(head.group(1)) - 160) <= 40  # one frame at 25 fps
    # 12 s: twelve 1 s hops (the audio's tail no longer makes a 13th), one face
    assert re.search(r"lipsync-model: 12 of 12 windows measured\n", out), out


def test_forcing_lipsync_on_a_test_signal_finds_no_face(make_signal, capsys):
    path, _ = make_signal(offset_ms=-40.0, duration_s=6.0, size=(320, 180))
    assert main(["check", str(path), "--method", "lipsync", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "lipsync-model" and report["reason"] == "no face found"


@pytest.mark.parametrize("command", [[], ["check"], ["monitor"]])
def test_help_states_the_sign_and_the_exit_codes(command):
    text = " ".join(run_cli(*command, "--help").stdout.split())
    assert "offset_ms > 0 means the audio LEADS the picture" in text
    assert "4 internal error" in text
    if command:
        assert "classical = lip opening against the speech envelope" in text
