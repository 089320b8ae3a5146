"""Two minutes of tools/soak.py: real RTSP servers killed and restarted, a relay that
drops 5% of the RTP packets and stalls or cuts connections; the monitor recovers."""

from __future__ import annotations

import pytest

from tests.live import rtsp_server_missing


@pytest.mark.skipif(bool(rtsp_server_missing()), reason=str(rtsp_server_missing()))
def test_the_monitor_recovers_from_every_outage_and_keeps_its_resources(tmp_path):
    from tools.soak import run

    result = run(minutes=2.0, kill_every_s=40.0, loss=0.05, folder=tmp_path,
                 stall_every_s=30.0, sample_every_s=2.0, log=lambda *_: None)
    assert result["restarts"] == 2
    # every stream measured again before the next kill, at least once: a lip-sync stream
    # can take longer than the 40 s between kills here (the hour-long soak's slowest
    # recovery was 42.5 s), and a recovery is only counted before the next kill
    assert result["recovered"] >= 1, result["restarts_detail"]
    errors = result["offset_error_after_recovery_ms"]
    # flash/beep: exact after a recovery. With 5% of the RTP packets lost, a flash can
    # arrive in a damaged frame and be seen a frame late, and the first estimate after a
    # recovery rests on one or two events: one such event moves it by up to a frame
    # (seen once in CI: 20.5 ms, the mean of 0 and 41 ms); the hour-long soaks read
    # <= 0.25 ms after all 44 of their test-signal recoveries
    # on a miss, say what each stream read after each restart, and what the metrics
    # showed around it (a rare miss of hundreds of ms is not explained yet: README, known issue)
    detail = [result["restarts_detail"], [s for s in result["samples"]
                                          if any(abs(s["t"] - r["t"]) < 20
                                                 for r in result["restarts_detail"])]]
    assert errors["test_signal_median"] <= 2.0, detail
    assert errors["test_signal_max"] <= 45.0, detail  # a frame (40 ms), never more
    assert errors["talking_head_max"] <= 80.0, detail  # lip sync: within two frames
    assert result["tracebacks"] == 0
    assert all(n >= 2 for n in result["reconnects"].values())  # each kill was reconnected
    assert result["errors_by_reason"]  # and counted by reason
    low, high = result["open_files"]
    assert high - low <= 40  # connections closed, not piling up
    low, high = result["threads"]
    assert high - low <= 30  # producer threads end with their connection
