"""Memory of `check` does not grow with the input's length (bounded rings, no buffering)."""

import subprocess
import sys

import pytest

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
