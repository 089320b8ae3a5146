"""The featurizer on a thread of its own (media.stage), and the CPU habits of issue 11:
one OpenBLAS thread, the speech-band level computed for the window only."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from avsync.features import audio as af
from avsync.lipsync import LipSyncAnalyser, LipSyncConfig
from avsync.media.sources import open_input
from avsync.pipeline import run_source
from avsync.synth.talking_head import TalkingHeadSpec, write_talking_head


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    path = tmp_path_factory.mktemp("stage") / "head.mp4"
    write_talking_head(path, TalkingHeadSpec(duration_s=6.0))
    return path


class _Keep:
    def __init__(self, stop_after: int | None = None) -> None:
        self.windows: list = []
        self.stop_after = stop_after

    def feed(self, window) -> None:
        self.windows.append(window)

    def reset_at(self, t: float) -> None:
        pass

    def keep_going(self) -> bool:
        return self.stop_after is None or len(self.windows) < self.stop_after


def _run(path, featurizer, feature_thread: bool, keep: _Keep | None = None):
    keep = keep or _Keep()
    opened = open_input(str(path))
    try:
        result = run_source(opened, featurizer, keep, hop_s=1.0, window_s=3.0,
                            feature_thread=feature_thread, keep_going=keep.keep_going)
    finally:
        opened.container.close()
    return keep.windows, result


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("avsync-features")]


def test_frames_featurized_on_a_thread_of_their_own_reach_the_windows_as_in_one(head):
    analyser = LipSyncAnalyser(LipSyncConfig(scorer="model"), 25.0)
    inline, _ = _run(head, analyser.front_end(), feature_thread=False)
    where: set[str] = set()
    front_end = analyser.front_end()

    def featurizer(frame):
        where.add(threading.current_thread().name)
        return front_end(frame)

    featurizer.shape, featurizer.dtype = front_end.shape, front_end.dtype
    staged, result = _run(head, featurizer, feature_thread=True)
    assert where == {"avsync-features-source"}  # not the decoding thread
    assert result.stats.video_frames == 150 and len(staged) == len(inline) >= 5
    for a, b in zip(inline, staged, strict=True):
        assert (a.t0, a.t1) == (b.t0, b.t1)
        np.testing.assert_array_equal(a.video_times, b.video_times)
        np.testing.assert_array_equal(a.video_features["mouth"], b.video_features["mouth"])
        np.testing.assert_array_equal(a.audio, b.audio)
    assert _stage_threads() == []


class _Broken:
    """A featurizer that fails on its 20th frame: a fault the real front end does not
    produce on demand (a model file that breaks mid-run)."""

    shape: tuple = ()
    dtype = np.dtype([("x", np.float32)])

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        if self.calls == 20:
            raise RuntimeError("front end broke")
        return np.zeros((), self.dtype)


def test_a_featurizer_that_fails_on_its_thread_fails_the_run_with_its_error(head):
    with pytest.raises(RuntimeError, match="front end broke"):
        _run(head, _Broken(), feature_thread=True)
    assert _stage_threads() == []


def test_stopping_early_ends_the_feature_thread_too(head):
    analyser = LipSyncAnalyser(LipSyncConfig(scorer="model"), 25.0)
    windows, result = _run(head, analyser.front_end(), feature_thread=True,
                           keep=_Keep(stop_after=2))
    assert len(windows) == 2 and result.last_t is not None and result.last_t < 4.0
    assert _stage_threads() == []


def test_the_speech_level_of_a_window_is_read_from_its_own_frames_only():
    rng = np.random.default_rng(0)
    for _ in range(300):
        samples = rng.standard_normal(int(rng.integers(0, 60_000))).astype(np.float32)
        start = float(rng.uniform(-3, 3))
        t0 = start + float(rng.uniform(-0.5, 3.0))
        t1 = t0 + float(rng.uniform(0.01, 3.0))
        full = af.power_frames(samples)
        times = af.frame_times(len(full), start)
        expected = full[(times >= t0) & (times < t1)]
        got = af.power_frames_between(samples, start, t0, t1)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


BLAS_PROBE = """
import json
import sys
import numpy  # loaded before avsync: its OpenBLAS pool starts a thread per core
from threadpoolctl import threadpool_info
before = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
from avsync.media.sources import open_input
from avsync.pipeline import run_source
from avsync.features.luma import LumaFeaturizer
class Sink:
    def feed(self, window): pass
    def reset_at(self, t): pass
opened = open_input(sys.argv[1])
run_source(opened, LumaFeaturizer(), Sink())
after = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
print(json.dumps([before, after]))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts one thread")
def test_numpy_loaded_before_avsync_still_runs_one_blas_thread(head):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", BLAS_PROBE, str(head)], env=env,
                         capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    assert before and before[0] > 1  # the probe can tell: numpy started with more
    assert after == [1] * len(before)
