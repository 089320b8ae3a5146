"""HTML reports rendered in a real headless Chromium: they load with no console error
and no network request, the batch table sorts, and a 10-hour file stays light."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run)")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsync", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def load(browser, page_path: Path, shot: Path):
    """The page, after checking it loaded cleanly: no console error, no request but
    the file itself; a full-page screenshot is left at `shot`."""
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(shot), full_page=True)
    assert errors == []
    assert requests == [page_path.as_uri()]  # self-contained: nothing fetched
    assert shot.stat().st_size > 10_000
    return page


def test_one_file_report_says_verdict_sign_and_tolerance(browser, make_signal, tmp_path):
    clip, _ = make_signal(offset_ms=-120.0, duration_s=10.0)
    report = tmp_path / "report.html"
    assert run_cli("check", str(clip), "--html", str(report)).returncode == 1
    page = load(browser, report, tmp_path / "report.png")
    verdict = page.inner_text(".verdict")
    assert verdict.startswith("FAIL") and "audio is 120.0 ms late" in verdict
    facts = page.inner_text(".facts")
    assert "-3.00 frames" in facts and "ebu-r37" in facts and "test-signal" in facts
    assert "drift" in facts
    assert page.locator("svg").count() == 1


def test_the_batch_index_links_and_sorts_every_file(browser, make_signal, tmp_path):
    folder = tmp_path / "delivery"
    folder.mkdir()
    for name, offset in (("late.mp4", -120.0), ("ok.mp4", 10.0), ("early.mp4", 90.0)):
        path, _ = make_signal(name, offset_ms=offset, duration_s=6.0)
        path.rename(folder / name)
    (folder / "broken.mp4").write_text("not media\n")
    index = tmp_path / "index.html"
    assert run_cli("check", str(folder), "--html", str(index)).returncode == 3
    page = load(browser, index, tmp_path / "index.png")
    rows = page.locator("tbody tr")
    assert rows.count() == 4
    for i in range(4):  # each row links to its file's section on the page
        anchor = rows.nth(i).locator("a").get_attribute("href")
        assert page.locator(anchor).count() == 1
    page.click("th:nth-child(3)")  # offset, ascending
    offsets = [page.inner_text(f"tbody tr:nth-child({i}) td:nth-child(3)") for i in (1, 2, 3)]
    assert [float(v) for v in offsets] == pytest.approx([-120.0, 10.0, 90.0], abs=1.0)
    assert "bad input: 1 fail: 2 pass: 1" in page.inner_text("body")


def test_ten_hours_of_windows_stay_a_light_page(browser, tmp_path):
    from avsync.html import CHART_BINS, render_html

    rng = random.Random(1)
    windows = [{"t": 1.5 + i, "confidence": 0.9,
                "status": "measured" if rng.random() > 0.2 else "no_face",
                "offset_ms": -30.0 + rng.gauss(0, 15)} for i in range(36_000)]
    for w in windows:
        if w["status"] != "measured":
            w["offset_ms"] = None
    record = {"file": "ten-hours.ts", "verdict": "pass", "offset_ms": -30.0,
              "offset_frames": -0.75, "confidence": 0.95, "method": "lipsync-model",
              "standard": {"name": "ebu-r37", "lead_ms": 40.0, "lag_ms": -60.0},
              "drift_ms_per_min": 0.0, "duration_s": 36_000.0, "windows": windows,
              "detail": {"offset_start_ms": -30.0, "offset_end_ms": -30.0}}
    page_path = tmp_path / "long.html"
    page_path.write_text(render_html(json.loads(json.dumps(record))))
    page = load(browser, page_path, tmp_path / "long.png")
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    assert nodes < 3 * CHART_BINS  # not 36,000 windows drawn one by one
    assert "36000 windows in 600 time bins" in page.inner_text("body")
