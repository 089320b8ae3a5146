"""Memory of `check` does not grow with the input's length (bounded rings, no buffering)."""

import gc
import subprocess
import sys
import threading
import weakref

import pytest

from avsync.monitor.config import parse_stream_arg
from avsync.monitor.stream import StreamWorker

PEAK_RSS = (
    "import resource, sys; from avsync.check import check_file; "
    "r = check_file(sys.argv[1]); assert r.offset_ms is not None; "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def _peak_rss_kib(path) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True,
                         text=True, check=True, timeout=300)
    return int(out.stdout.strip())


@pytest.mark.slow
def test_peak_memory_of_a_long_file_matches_a_short_one(make_signal):
    short, _ = make_signal("short.mp4", duration_s=60.0, size=(320, 180))
    long, _ = make_signal("long.mp4", duration_s=600.0, size=(320, 180))
    growth_mib = (_peak_rss_kib(long) - _peak_rss_kib(short)) / 1024
    # 10x the media; the rings are fixed, so only the per-event results may grow
    assert growth_mib < 8, f"peak RSS grew {growth_mib:.1f} MiB for 9 more minutes"


def test_a_finished_connection_frees_its_rings_without_the_cycle_collector(make_signal):
    """A monitor stream's connection ends (a cut, a server restart): its rings (~15 MB of
    face records at 25 fps) and producer must go at once. Held in a reference cycle,
    they waited for the cyclic collector, which can run long after; the hour-long soak
    grew ~1.2 GB this way."""
    clip, _ = make_signal("live.mp4", duration_s=4.0)
    worker = StreamWorker(parse_stream_arg(f"cam={clip}"), threading.Event())
    watched = {}
    watch = worker._watch

    def remember(producer) -> None:
        watched.update(producer=weakref.ref(producer), rings=weakref.ref(producer.rings))
        watch(producer)

    worker._watch = remember
    gc.disable()
    try:
        worker._session()  # one connection, read to its end
        alive = [name for name, ref in watched.items() if ref() is not None]
    finally:
        gc.enable()
    assert watched, "the session never started a producer"
    assert alive == [], f"still held after the connection ended: {alive}"
