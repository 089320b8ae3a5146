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
    from avsync.synth import TalkingHeadSpec, write_talking_head

    write_talking_head(folder / "head.mp4", TalkingHeadSpec(offset_ms=0.0, duration_s=6.0))
    index = tmp_path / "index.html"
    assert run_cli("check", str(folder), "--html", str(index)).returncode == 3
    page = load(browser, index, tmp_path / "index.png")
    rows = page.locator("tbody tr")
    assert rows.count() == 5
    # the speaker's face beside a lip-sync file; no confidence for a file never measured,
    # and it comes last: the least sure first
    assert page.locator("tbody td img.face").count() == 1
    last = [page.inner_text(f"tbody tr:nth-child(5) td:nth-child({c})") for c in (2, 5)]
    assert last[0].endswith("broken.mp4") and last[1] == ""
    confidences = [float(page.inner_text(f"tbody tr:nth-child({i}) td:nth-child(5)"))
                   for i in range(1, 5)]
    assert confidences == sorted(confidences)
    for i in range(5):  # each row links to its file's section on the page
        anchor = rows.nth(i).locator("a").get_attribute("href")
        assert page.locator(anchor).count() == 1
    page.click("th:nth-child(4)")  # offset, ascending
    offsets = [float(page.inner_text(f"tbody tr:nth-child({i}) td:nth-child(4)"))
               for i in range(1, 5)]
    assert offsets == sorted(offsets) and offsets[0] == pytest.approx(-120.0, abs=1.0)
    assert offsets[-1] == pytest.approx(90.0, abs=1.0)
    assert "bad input: 1 fail: 2 pass: 2" in page.inner_text("body")


def _curve_rows(image, band: int) -> list[float | None]:
    """Per pixel column of an evidence strip's band, the height of the curve drawn in it
    (the mean row of its dark pixels), or None where nothing is drawn."""
    import numpy as np

    from avsync.evidence import CROP_H, LABEL_W, ROW_H

    pixels = np.asarray(image.convert("L"), float)
    top = CROP_H + 4 + band * ROW_H
    rows = pixels[top : top + ROW_H - 3, LABEL_W:]
    out = []
    for column in rows.T:
        dark = np.flatnonzero(column < 100)
        out.append(float(dark.mean()) if len(dark) else None)
    return out


def test_a_lip_sync_report_shows_the_lips_and_the_sound_it_rests_on(browser, tmp_path):
    """The HTML page and --evidence: the surest windows and the least sure one as
    filmstrips, decodable PNGs, named in the JSON; the moved envelope is the recorded
    one moved by the window's offset; the page is self-contained and small."""
    import numpy as np
    from PIL import Image

    from avsync.evidence import CROP_W
    from avsync.synth import TalkingHeadSpec, write_talking_head

    head = tmp_path / "head.mp4"
    write_talking_head(head, TalkingHeadSpec(offset_ms=120.0, duration_s=12.0))
    report, folder = tmp_path / "report.html", tmp_path / "evidence"
    result = run_cli("check", str(head), "--html", str(report), "--evidence", str(folder),
                     "--json")
    assert result.returncode == 1, result.stderr
    record = json.loads(result.stdout)
    evidence = record["evidence"]
    labels = [e["label"] for e in evidence]
    assert 3 <= labels.count("most confident") <= 5 and labels[-1] == "least confident"
    assert min(e["confidence"] for e in evidence) == evidence[-1]["confidence"]
    for item in evidence:
        image = Image.open(item["png"])
        image.load()  # decodes
        assert image.width > 10 * image.height
        recorded, moved = _curve_rows(image, 1), _curve_rows(image, 2)
        a = np.array([v if v is not None else np.nan for v in recorded])
        b = np.array([v if v is not None else np.nan for v in moved])
        per_ms = CROP_W * 25 / 1000  # px per ms: a 96 px crop per 40 ms frame
        lags = range(-int(700 * per_ms), int(700 * per_ms))
        best = min(lags, key=lambda k: np.nanmean(np.abs(b[max(k, 0):len(b) + min(k, 0)]
                                                         - a[max(-k, 0):len(a) - max(k, 0)])))
        assert best / per_ms == pytest.approx(item["offset_ms"], abs=3 / per_ms + 10)
    text = run_cli("check", str(head)).stdout
    assert f"confidence {record['confidence']:.2f}: {record['why_confidence']}" in text
    page = load(browser, report, tmp_path / "report.png")
    assert page.locator("figure.strip").count() == len(evidence)
    assert page.locator("figure.strip img").first.get_attribute("src").startswith(
        "data:image/png;base64,")
    assert record["why_confidence"] in page.inner_text(".facts")
    assert report.stat().st_size < 2_000_000


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
