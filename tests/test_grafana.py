"""The Grafana dashboard and the alert rules, checked against a real Prometheus that
scrapes a real monitor (Grafana itself is not installable here)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.live import PrometheusServer, free_port, prometheus_missing, wait_for
from tests.test_monitor import _monitor

GRAFANA = Path(__file__).resolve().parents[1] / "grafana"
needs_prometheus = pytest.mark.skipif(bool(prometheus_missing()),
                                      reason=str(prometheus_missing()))


def dashboard_queries() -> list[str]:
    board = json.loads((GRAFANA / "dashboards" / "avsync.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    (streams,) = [v for v in board["templating"]["list"] if v["name"] == "stream"]
    exprs.append(streams["definition"].replace(
        "label_values(", "group by (stream) (").replace(", stream)", ")"))
    return exprs


def test_the_dashboard_imports_into_any_grafana():
    """No hard-coded datasource uid: every query goes through the datasource variable,
    which Grafana fills with the instance's own Prometheus."""
    text = (GRAFANA / "dashboards" / "avsync.json").read_text()
    board = json.loads(text)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    uids = re.findall(r'"uid":\s*"([^"]*)"', text)
    assert uids and set(uids) == {"avsync", "${datasource}"}  # the board, else the variable


def alert_rules() -> dict[str, str]:
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def test_every_scrape_config_scrapes_the_job_the_absence_alert_watches():
    """AvsyncMonitorAbsent fires when up{job=...} is gone: a scrape job of another name
    (the Kubernetes one was `avsync-kubernetes`) would page someone every time."""
    watched = set(re.findall(r'job="([^"]+)"', alert_rules()["AvsyncMonitorAbsent"]))
    deploy = GRAFANA.parent / "deploy"
    configs = [GRAFANA / "prometheus.yml", deploy / "prometheus-scrape.yml",
               deploy / "prometheus-scrape-kubernetes.yml"]
    for config in configs:
        jobs = {j["job_name"] for j in yaml.safe_load(config.read_text())["scrape_configs"]}
        assert jobs == watched, (config.name, jobs, watched)


def test_promtool_accepts_the_rules_and_the_config(tmp_path):
    if prometheus_missing():
        pytest.skip(prometheus_missing())
    out = subprocess.run(["promtool", "check", "rules", str(GRAFANA / "alerts.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 rules found" in out.stdout


@needs_prometheus
def test_every_dashboard_query_and_alert_returns_data(tmp_path):
    from avsync.synth import TestSignalSpec, write_test_signal

    # one stream out of tolerance (audio 120 ms late, EBU R37 allows 60) and one down:
    # the two alerts that can fire here must fire; every series they use must exist.
    # An event a second and a 4 s drift span, so drift has a value within seconds.
    clip = tmp_path / "fast-events.mp4"
    write_test_signal(clip, TestSignalSpec(duration_s=60.0, size=(320, 180), period_s=1.0,
                                           offset_ms=-120.0))
    dead = f"rtsp://127.0.0.1:{free_port()}/none"
    monitor = _monitor([f"late={clip}", f"dead={dead}"], realtime=True, drift_min_span_s=4.0)
    host, port = monitor.server.address
    prometheus = PrometheusServer(tmp_path, [f"{host}:{port}"], [GRAFANA / "alerts.yml"])
    try:
        assert wait_for(lambda: _has_data(prometheus, "avsync_av_offset_seconds"), 30), \
            "Prometheus got no offset from the monitor"
        # rates need two scrapes inside their range; drift needs its span
        wait_for(lambda: _has_data(prometheus, "rate(avsync_windows_total[30s]) > 0"), 15)
        wait_for(lambda: _has_data(prometheus, "avsync_av_drift_ratio"), 15)
        empty = []
        for expr in dashboard_queries():
            promql = expr.replace('stream=~"$stream"', 'stream=~".+"').replace(
                "$__rate_interval", "30s")
            if not _has_data(prometheus, promql):
                empty.append(promql)
        assert not empty, f"dashboard queries without data: {empty}"
        rules = alert_rules()
        fired = {name: _series(prometheus, expr) for name, expr in rules.items()}
        assert {s["stream"] for s in fired["AvsyncOffsetOutOfTolerance"]} == {"late"}
        assert {s["stream"] for s in fired["AvsyncStreamDown"]} == {"dead"}
        # lag is small here: the rule must not fire, but its series must exist
        assert fired["AvsyncLagGrowing"] == [] and fired["AvsyncMonitorAbsent"] == []
        for name in re.findall(r"avsync_[a-z_]+", rules["AvsyncLagGrowing"]):
            assert _has_data(prometheus, name), name
    finally:
        prometheus.stop()
        monitor.stop()


def _series(prometheus: PrometheusServer, expr: str) -> list[dict]:
    reply = prometheus.query(expr)
    assert reply["status"] == "success", (expr, reply)
    return [r["metric"] for r in reply["data"]["result"]]


def _has_data(prometheus: PrometheusServer, expr: str) -> bool:
    try:
        return bool(_series(prometheus, expr))
    except OSError:
        return False
