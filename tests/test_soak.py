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
    # the first value published after each recovery: the tracker settles first (two
    # readings that share no media agree), so a first window read far off is never
    # shown (before it, one soak run in ~12 read 475 or 1,440 ms off); on a miss, say
    # what each stream read after each restart, what the metrics showed around it, the
    # timestamp jumps and strays the monitor logged and the server's PLAY replies
    detail = [result["restarts_detail"], [s for s in result["samples"]
                                          if any(abs(s["t"] - r["t"]) < 20
                                                 for r in result["restarts_detail"])],
              result["clock_log"], result["play_replies"]]
    # flash/beep: 2 ms (60-minute soak of 2026-12-03: 22 of 22 within 0.06 ms; before
    # a beep heard right after lost audio was dropped and the first value held to an
    # earlier agreeing reading, 3 of 22 read 2.9, 7.7 and 18.7 ms off)
    assert errors["test_signal_max"] <= 2.0, detail
    assert errors["talking_head_max"] <= 80.0, detail  # lip sync: within two frames
    # and every test-signal value after it: two frames stamped 0.72 s ahead once made
    # the clock re-base the picture, and a connection read 1,440 ms off from then on
    assert result["offset_error_all_values_ms"]["test_signal"]["max"] <= 2.0, detail
    assert result["tracebacks"] == 0
    assert all(n >= 2 for n in result["reconnects"].values())  # each kill was reconnected
    assert result["errors_by_reason"]  # and counted by reason
    low, high = result["open_files"]
    assert high - low <= 40  # connections closed, not piling up
    low, high = result["threads"]
    assert high - low <= 30  # producer threads end with their connection
