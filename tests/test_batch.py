"""`avsync check` over many inputs: local workers, --resume after a kill, a real local
Ray cluster (also with a worker killed mid-run), and monitor sharding."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avsync.batch.results import worst_exit
from tests.helpers import remux
from tests.live import SilentServer, free_port, wait_for

OFFSETS = {"a.mp4": -120.0, "b.mkv": 0.0, "c.ts": 30.0, "sub/d.mp4": 80.0}
BAD = {"truncated.mp4": "not a readable media file", "silent.mp4": "no audio stream",
       "notes.mp4": "not a readable media file"}


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsync", *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from avsync.synth import TestSignalSpec, write_test_signal

    root = tmp_path_factory.mktemp("batch") / "delivery"
    (root / "sub").mkdir(parents=True)
    for name, offset in OFFSETS.items():
        write_test_signal(root / name, TestSignalSpec(duration_s=6.0, size=(160, 96),
                                                      offset_ms=offset))
    good = root / "a.mp4"
    (root / "truncated.mp4").write_bytes(good.read_bytes()[:3000])
    remux(good, root / "silent.mp4", drop=lambda p: p.stream.type == "audio")
    (root / "notes.mp4").write_text("not media\n")
    (root / "readme.txt").write_text("not picked: not a media extension\n")
    return root


def records(path: Path) -> dict[str, dict]:
    lines = path.read_text().splitlines()
    out = {}
    for line in lines:
        record = json.loads(line)
        out[record["input"]["path"]] = record
    assert len(out) == len(lines), "a file was reported twice"
    return out


def assert_all_right(found: dict[str, dict], root: Path) -> None:
    assert set(found) == {str(root / n) for n in [*OFFSETS, *BAD]}
    for name, offset in OFFSETS.items():
        record = found[str(root / name)]
        assert record["offset_ms"] == pytest.approx(offset, abs=1.0), name
        assert record["exit_code"] == (0 if -60 <= offset <= 40 else 1)
    for name, reason in BAD.items():
        record = found[str(root / name)]
        assert record["verdict"] == "bad_input" and reason in record["reason"], record
        assert record["exit_code"] == 3


def test_a_folder_on_two_workers_reports_every_file(folder, tmp_path):
    out, table = tmp_path / "results.jsonl", tmp_path / "results.csv"
    result = run_cli("check", str(folder), "--jobs", "2", "--out", str(out), "--csv",
                     str(table))
    assert result.returncode == 3, result.stderr  # the worst file: bad input
    found = records(out)
    assert_all_right(found, folder)
    for record in found.values():
        assert record["schema"] == 1 and record["input"]["size"] > 0
        assert record["input"]["mtime"] > 0
    rows = table.read_text().splitlines()
    assert rows[0].startswith("path,verdict,offset_ms") and len(rows) == 1 + len(found)
    assert "checked 7 inputs: 2 pass, 2 fail, 3 bad input" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 7  # one line per input


def test_manifest_stdin_and_glob_pick_the_inputs(folder, tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# tonight's ingest\n{folder / 'a.mp4'}\n\n{folder / 'b.mkv'}\n")
    result = run_cli("check", "--manifest", str(manifest), "-", "--json",
                     input=f"{folder / 'c.ts'}\n# skipped\n")
    assert result.returncode == 1, result.stderr  # a.mp4 is 120 ms late
    got = {json.loads(line)["input"]["path"] for line in result.stdout.splitlines()}
    assert got == {str(folder / n) for n in ("a.mp4", "b.mkv", "c.ts")}
    only_mkv = run_cli("check", str(folder), "--glob", "*.mkv", "--json")
    assert [json.loads(line)["file"] for line in only_mkv.stdout.splitlines()] == \
        [str(folder / "b.mkv")]


def test_resume_after_a_kill_finishes_without_repeats_or_gaps(folder, tmp_path):
    big = tmp_path / "big"
    shutil.copytree(folder, big)
    for i in range(6):  # enough inputs that the kill lands half-way
        shutil.copy(big / "a.mp4", big / f"copy{i}.mp4")
    out = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "avsync", "check", str(big), "--jobs", "1",
                             "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 4, 120,
                    every_s=0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up: a crash, a reboot, an OOM kill
    proc.wait(10)
    first = len(out.read_text().splitlines())
    total = len(OFFSETS) + len(BAD) + 6
    assert first < total
    resumed = run_cli("check", str(big), "--out", str(out), "--resume", "--jobs", "2")
    assert f"({first} already done, skipped)" in resumed.stderr, resumed.stderr
    found = records(out)  # no duplicates
    assert len(found) == total  # and none missing
    again = run_cli("check", str(big), "--out", str(out), "--resume")
    assert f"checked 0 inputs ({total} already done, skipped)" in again.stderr
    assert again.returncode == 3  # the verdicts of the skipped inputs still count


def test_resume_knows_a_file_however_it_is_spelt_and_a_changed_file_replaces_its_record(
        folder, tmp_path):
    from avsync.synth import TestSignalSpec, write_test_signal

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.mp4", "b.mkv"):
        shutil.copy(folder / name, lib / name)
    out, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    first = run_cli("check", "lib", "--out", "r.jsonl", cwd=tmp_path)  # a relative path
    assert first.returncode == 1 and len(out.read_text().splitlines()) == 2, first.stderr
    again = run_cli("check", str(lib), "--out", str(out), "--resume", "--csv", str(table))
    assert "checked 0 inputs (2 already done, skipped)" in again.stderr, again.stderr
    rows = table.read_text().splitlines()  # the whole run, not only what was new
    assert len(rows) == 3 and {r.split(",")[1] for r in rows[1:]} == {"fail", "pass"}
    # one file changes: checked again, and its record replaced, not added beside
    write_test_signal(lib / "b.mkv", TestSignalSpec(duration_s=4.0, size=(160, 96),
                                                    offset_ms=200.0))
    changed = run_cli("check", str(lib), "--out", str(out), "--resume", "--csv", str(table))
    assert "checked 1 input (1 already done, skipped)" in changed.stderr, changed.stderr
    found = records(out)  # one record per input
    assert len(found) == 2
    assert found[str(lib / "b.mkv")]["offset_ms"] == pytest.approx(200.0, abs=1.0)
    assert len(table.read_text().splitlines()) == 3


def test_output_files_are_checked_before_any_work(folder, tmp_path):
    clip = str(folder / "a.mp4")
    (tmp_path / "dir").mkdir()
    for args, says in (
            (["--html", str(tmp_path / "dir")], "--html"),
            (["--out", str(tmp_path / "dir")], "--out"),
            ([str(folder), "--csv", str(tmp_path / "dir")], "--csv"),
            (["--plot", str(tmp_path / "dir")], "--plot"),
            (["--plot", str(tmp_path / "x.txt")], ".png, .svg, .pdf"),
            ([str(folder), "--out", str(tmp_path / "same"), "--csv",
              str(tmp_path / "same")], "name the same file")):
        started = time.monotonic()
        result = run_cli("check", clip, *args)
        assert result.returncode == 3, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (args, lines)
        assert time.monotonic() - started < 20  # refused up front, not after the work
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]  # nothing written
    assert not list((tmp_path / "dir").iterdir())


def test_a_hanging_or_bad_file_is_its_own_record(folder, tmp_path):
    out = tmp_path / "r.jsonl"
    with SilentServer() as server:  # accepts and never answers: the reader hangs
        stuck = f"rtsp://127.0.0.1:{server.port}/live"
        result = run_cli("check", str(folder / "b.mkv"), stuck, str(folder / "notes.mp4"),
                         "--timeout", "120", "--file-timeout", "4", "--out", str(out),
                         "--jobs", "2")
    found = records(out)
    assert found[stuck]["verdict"] == "timeout" and "--file-timeout 4" in found[stuck]["reason"]
    assert found[str(folder / "b.mkv")]["verdict"] == "pass"
    assert found[str(folder / "notes.mp4")]["verdict"] == "bad_input"
    assert result.returncode == 3


def test_the_worst_file_sets_the_exit_code():
    assert worst_exit([0, 2, 1]) == 1  # a failure outranks an unmeasured file
    assert worst_exit([0, 1, 3]) == 3
    assert worst_exit([0, 4, 3]) == 4
    assert worst_exit([2, 0]) == 2
    assert worst_exit([]) == 0


# -- a real local Ray cluster --------------------------------------------------------------
def _ray_missing() -> str | None:
    return None if shutil.which("ray") else "Ray not installed (pip install 'avsync[ray]')"


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    if _ray_missing():
        pytest.skip(_ray_missing())
    port = free_port()
    low = 31000 if not 31000 <= port <= 31999 else 33000
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--port", str(port),
                            "--node-ip-address", "127.0.0.1", "--include-dashboard=false",
                            "--disable-usage-stats", "--min-worker-port", str(low),
                            "--max-worker-port", str(low + 999)],
                           capture_output=True, text=True, timeout=120, env=env)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, timeout=60, env=env)


def test_the_same_folder_through_ray_gives_the_same_answers(folder, tmp_path, ray_head):
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_cli("check", str(folder), "--out", str(local), "--jobs", "2")
    result = run_cli("check", str(folder), "--ray", ray_head, "--out", str(remote))
    assert result.returncode == 3, result.stderr
    found = records(remote)
    assert_all_right(found, folder)
    mine = records(local)
    for path, record in found.items():
        assert record["offset_ms"] == mine[path]["offset_ms"]
        assert record["verdict"] == mine[path]["verdict"]
    # a hung input under a tight --file-timeout: it alone times out; the clock starts
    # when its task begins the input, so a worker's start-up makes no other one late
    with SilentServer() as server:
        stuck = f"rtsp://127.0.0.1:{server.port}/live"
        timed = tmp_path / "timed.jsonl"
        run_cli("check", str(folder / "a.mp4"), str(folder / "b.mkv"), stuck, "--ray",
                ray_head, "--timeout", "120", "--file-timeout", "5", "--out", str(timed))
    got = records(timed)
    assert got[stuck]["verdict"] == "timeout", got[stuck]
    assert {got[str(folder / n)]["verdict"] for n in ("a.mp4", "b.mkv")} == {"fail", "pass"}
    # a relative folder: the driver resolves it (a worker's working folder is another)
    relative = run_cli("check", folder.name, "--ray", ray_head, "--json", cwd=folder.parent)
    got = [json.loads(line) for line in relative.stdout.splitlines()]
    assert len(got) == len(found)
    assert {r["verdict"] for r in got if "truncated" not in r["file"]
            and "silent" not in r["file"] and "notes" not in r["file"]} <= {"pass", "fail"}


def test_ray_reruns_the_input_of_a_worker_that_dies(folder, tmp_path, ray_head):
    from avsync.synth import TalkingHeadSpec, write_talking_head

    work = tmp_path / "heads"
    work.mkdir()
    for i, offset in enumerate((-80.0, 120.0, 0.0, 40.0)):
        write_talking_head(work / f"head{i}.mp4", TalkingHeadSpec(offset_ms=offset,
                                                                  duration_s=8.0))
    out = tmp_path / "ray.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "avsync", "check", str(work), "--ray",
                             ray_head, "--out", str(out), "--min-confidence", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def busy_worker() -> int | None:
        found = subprocess.run(["pgrep", "-f", "ray::_check_task"], capture_output=True,
                               text=True).stdout.split()
        return int(found[0]) if found else None

    victim = wait_for(busy_worker, 60, every_s=0.1)
    assert victim, "no Ray task started"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    found = records(out)
    assert len(found) == 4, err
    for i, offset in enumerate((-80.0, 120.0, 0.0, 40.0)):
        record = found[str(work / f"head{i}.mp4")]
        assert record["verdict"] in ("pass", "fail"), record  # measured, not an error
        assert record["offset_ms"] == pytest.approx(offset, abs=41.0)


def test_an_unreachable_ray_head_is_one_line(folder):
    result = run_cli("check", str(folder), "--ray", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 3
    assert "no Ray head answers there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- monitor shards ----------------------------------------------------------------------------
def test_shards_split_a_config_into_disjoint_complete_sets(tmp_path):
    from avsync.monitor.config import load_config, take_shard

    config = tmp_path / "streams.toml"
    config.write_text("".join(f'[[stream]]\nname = "ch{i}"\nurl = "udp://239.1.1.{i}:5000"\n'
                              for i in range(10)))
    specs = load_config(config)
    shards = [{s.name for s in take_shard(specs, k, 3)} for k in (1, 2, 3)]
    assert set().union(*shards) == {s.name for s in specs}  # complete
    assert sum(map(len, shards)) == 10  # disjoint
    assert shards == [{s.name for s in take_shard(load_config(config), k, 3)}
                      for k in (1, 2, 3)]  # stable from run to run
    bad = run_cli("monitor", "--config", str(config), "--shard", "4/3", timeout=30)
    assert bad.returncode == 3 and "use K/N" in bad.stderr
    port = free_port()
    started = time.monotonic()
    one = subprocess.Popen([sys.executable, "-m", "avsync", "monitor", "--config", str(config),
                            "--shard", "2/3", "-q", "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        from tests.live import scrape

        samples = wait_for(lambda: scrape(f"http://127.0.0.1:{port}/metrics"), 30)
        served = {dict(labels)["stream"] for (name, labels) in samples
                  if name == "avsync_stream_up"}
        assert served == shards[1]
    finally:
        one.send_signal(signal.SIGINT)
        one.communicate(timeout=20)
    assert time.monotonic() - started < 60


def test_the_deploy_examples_run_what_they_say(tmp_path):
    import shlex

    import yaml

    from avsync.cli import build_parser
    from avsync.monitor.config import load_config
    from tests.live import prometheus_missing

    deploy = Path(__file__).resolve().parents[1] / "deploy"
    docs = {d["kind"]: d for d in yaml.safe_load_all((deploy / "monitor.yaml").read_text())}
    streams = tmp_path / "streams.toml"
    streams.write_text(docs["ConfigMap"]["data"]["streams.toml"])
    assert len(load_config(streams)) == 3
    spec = docs["StatefulSet"]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    assert int(shards) == spec["replicas"]
    for ordinal in range(spec["replicas"]):  # what the pod's shell makes of its name
        script = container["args"][0].replace("${POD_NAME##*-}", str(ordinal)) \
            .replace("${SHARDS}", shards).replace("$(( ", "").replace(" + 1 ))", "+1")
        words = shlex.split(script)[1:]  # drop `exec`
        words[words.index("--shard") + 1] = f"{ordinal + 1}/{shards}"
        args = build_parser().parse_args(words[1:])
        assert args.command == "monitor" and args.shard == f"{ordinal + 1}/{shards}"
    job = yaml.safe_load((deploy / "rayjob.yaml").read_text())
    words = shlex.split(job["spec"]["entrypoint"])
    args = build_parser().parse_args(words[1:])
    assert args.ray == "auto" and args.resume and args.out
    if not prometheus_missing():
        checked = subprocess.run(["promtool", "check", "config", "--syntax-only",
                                  str(deploy / "prometheus-scrape.yml")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_odd_names_never_break_the_batch(folder, tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    name = os.fsdecode(b"\xff<b>&\"late.mp4")  # not UTF-8, and HTML's special characters
    shutil.copy(folder / "a.mp4", odd / name)
    (odd / "._a.mp4").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork: not media
    shutil.copy(folder / "b.mkv", odd / "UPPER.MKV")
    manifest = tmp_path / "list.txt"
    manifest.write_text("bad\x00name.mp4\n")
    out, table, page = tmp_path / "r.jsonl", tmp_path / "r.csv", tmp_path / "r.html"
    result = run_cli("check", str(odd), "--manifest", str(manifest), "--out", str(out),
                     "--csv", str(table), "--html", str(page))
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    found = {r["input"]["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(found) == 3  # the odd name, UPPER.MKV, the NUL line; no resource fork
    late = next(r for p, r in found.items() if p.endswith('<b>&"late.mp4'))
    assert late["offset_ms"] == pytest.approx(-120.0, abs=1.0)
    assert any("NUL" in (r["reason"] or "") for r in found.values())
    assert "&lt;b&gt;&amp;&quot;late.mp4" in page.read_text()
    assert len(table.read_text().splitlines()) == 4


def test_resume_tries_timeouts_again_and_tells_urls_apart(tmp_path):
    from avsync.batch.inputs import stat_input
    from avsync.batch.record import TIMEOUT, error_record
    from avsync.batch.results import ResultSink, done_keys

    one, two = stat_input("https://cdn/get?id=1"), stat_input("https://cdn/get?id=2")
    assert one.shown == two.shown and one.key != two.key  # redacted alike, keyed apart
    out = tmp_path / "r.jsonl"
    sink = ResultSink(out, None, append=False)
    three = stat_input("https://cdn/get?id=3")
    sink.add(error_record(one, "not a readable media file"))
    sink.add(error_record(two, "no answer", verdict=TIMEOUT))
    sink.add(error_record(three, "Connection refused"))  # the server, not the input
    sink.close()
    with open(out, "a") as f:
        f.write('{"schema": 1, "inpu')  # a line cut short by a kill
    assert set(done_keys(out)) == {one.key}  # the timeout and the refusal are tried again
    assert out.read_text().endswith("}\n")  # and the cut line is gone
