"""Self-contained HTML reports: one file's, and a batch index with every file's section.

No network fetches: the style is inline and the chart is inline SVG; the only script
sorts the index table. Long files stay light: the chart draws at most CHART_BINS
points (windows are binned, the median offset per bin, the spread as a band), so a
10-hour file is a few hundred SVG nodes, not 36,000.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from pathlib import Path

from avsync import __version__
from avsync.report import DEFAULT_MIN_CONFIDENCE, why_no_drift

CHART_BINS = 600
NICE_LIMITS_MS = (50, 100, 200, 300, 500, 1000, 2000, 5000, 10_000)
W, PAD_L, PAD_R = 900, 56, 12
# the chart's rows, top to bottom: the offset, the status strip (below the offset axis,
# never on one of its gridlines), the confidence with the --min-confidence line, times
OFFSET_TOP, OFFSET_BOTTOM = 12, 196
STRIP_TOP, STRIP_H = 206, 6
CONF_TOP, CONF_BOTTOM = 226, 286
H = 306
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "uncertain": "#bf8700",
           "unmeasured": "#6e7781", "bad_input": "#6e7781", "timeout": "#6e7781",
           "internal_error": "#8250df"}
STATUS_COLOURS = {"measured": "#0969da", "no_face": "#d4a72c", "no_speech": "#8c959f",
                  "low_confidence": "#fb8f44"}
VERDICT_WORDS = {"pass": "PASS: within tolerance", "fail": "FAIL: outside tolerance",
                 "uncertain": "UNCERTAIN: not sure enough to judge",
                 "unmeasured": "NOT MEASURED", "bad_input": "BAD INPUT",
                 "timeout": "TIMED OUT", "internal_error": "INTERNAL ERROR"}

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 6px}
.verdict{color:#fff;padding:10px 14px;border-radius:6px;font-size:18px;font-weight:600}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
.facts dt{color:#57606a}.facts dd{margin:0}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #d0d7de;
text-align:left}th{cursor:pointer;background:#f6f8fa;user-select:none}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}
.legend span{margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:middle}
section.file{border-top:2px solid #d0d7de;margin-top:32px;padding-top:8px}
small{color:#57606a}pre{white-space:pre-wrap}td:first-child,td:last-child{word-break:break-word}
img.face{width:48px;height:48px;border-radius:4px;vertical-align:middle;margin-right:10px}
figure.strip{margin:14px 0}figure.strip div{overflow-x:auto;border:1px solid #d0d7de}
figure.strip img{display:block;max-width:none}figcaption{font-size:13px;margin-bottom:4px}
td img.face{width:32px;height:32px;margin:0}
"""

SORT_SCRIPT = """
document.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const rows = Array.from(body.rows);
  const dir = th.dataset.dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  const key = r => { const c = r.cells[col]; if (c.dataset.v === undefined)
    return c.textContent.toLowerCase();
    const v = parseFloat(c.dataset.v); return isNaN(v) ? Infinity : v; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (dir === 'asc' ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def describe(offset_ms: float | None) -> str:
    """The sign spelled out: 'audio leads the picture by 120.0 ms'."""
    if offset_ms is None:
        return "no offset measured"
    if abs(offset_ms) < 0.05:
        return "audio and picture in sync (0.0 ms)"
    if offset_ms > 0:
        return f"audio leads the picture by {offset_ms:.1f} ms"
    return f"audio is {-offset_ms:.1f} ms late (behind the picture)"


def _page(title: str, body: str, script: str = "", split: bool = False):
    """The whole page; with split, (what goes before more body, what goes after)."""
    before = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              f"<meta name=\"viewport\" content=\"width=device-width\">"
              f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}")
    after = ((f"<script>{script}</script>" if script else "")
             + f"<p><small>avsync {_e(__version__)}. Sign convention: offset &gt; 0 means "
             "the audio leads the picture; &lt; 0 that it is late (ITU-R BT.1359, EBU R37)."
             "</small></p></body></html>\n")
    return (before, after) if split else before + after


# -- one file -------------------------------------------------------------------------------
def file_section(record: dict, anchor: str = "report", heading: str = "h1",
                 strips: list[bytes] | None = None) -> str:
    """One file's report as an HTML fragment (also a section of the batch index), with
    the evidence strips (avsync.evidence) when given."""
    verdict = record.get("verdict", "unmeasured")
    colour = COLOURS.get(verdict, "#6e7781")
    std = record.get("standard") or {}
    offset = record.get("offset_ms")
    frames = record.get("offset_frames")
    face = record.get("thumbnail")
    parts = [f"<section class=\"file\" id=\"{_e(anchor)}\">",
             f"<{heading}>" + (f"<img class=\"face\" src=\"{_e(face)}\" alt=\"the speaker\">"
                               if face else "") + f"{_e(record.get('file', '?'))}</{heading}>",
             f"<div class=\"verdict\" style=\"background:{colour}\">"
             f"{_e(VERDICT_WORDS.get(verdict, verdict.upper()))}"
             + (f": {_e(describe(offset))}" if offset is not None else "") + "</div>"]
    facts = []
    if offset is not None:
        in_frames = f", {frames:+.2f} frames" if frames is not None else ""
        facts.append(("offset", f"{offset:+.1f} ms{in_frames}: {describe(offset)}"))
        why = record.get("why_confidence")
        facts.append(("confidence", f"{record.get('confidence') or 0.0:.2f}"
                      + (f": {why}" if why else "")))
    if record.get("method"):
        facts.append(("method", record["method"]))
    if std:
        facts.append(("tolerance", f"{std.get('name')}: audio may lead by up to "
                                   f"{std.get('lead_ms'):g} ms and be late by up to "
                                   f"{-std.get('lag_ms'):g} ms"))
    drift = record.get("drift_ms_per_min")
    if offset is not None:
        facts.append(("drift", f"{drift:+.2f} ms/min" if drift is not None
                      else f"not measured ({_no_drift(record)})"))
    jumps = (record.get("detail") or {}).get("jumps") or []
    if jumps:
        facts.append(("jumps", "; ".join(f"at {j['t']:.1f} s from {j['from_ms']:+.0f} to "
                                         f"{j['to_ms']:+.0f} ms" for j in jumps)))
    if record.get("reason"):
        facts.append(("reason", record["reason"]))
    facts += _media_facts(record)
    parts.append("<dl class=\"facts\">" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
                                                  for k, v in facts) + "</dl>")
    if record.get("windows"):
        parts.append(chart(record))
    for warning in record.get("warnings") or []:
        parts.append(f"<p class=\"warn\">{_e(warning)}</p>")
    if strips:
        parts.append(evidence_section(record.get("evidence") or [], strips))
    parts.append("</section>")
    return "".join(parts)


def evidence_section(evidence: list[dict], strips: list[bytes]) -> str:
    """The windows the verdict rests on, as filmstrips a person can check."""
    from avsync.evidence import data_uri

    parts = ["<h2>Evidence: the lips and the sound</h2><p><small>Each strip is about "
             "1.5 s of the speaker's mouth, frame by frame, as the sync model saw it; under "
             "it the mouth's opening, then the speech envelope as recorded, then moved by "
             "the offset measured in that window. Where the offset is right, the moved "
             "sound's bursts sit under the mouth's openings (the mouth opens a little "
             "before the sound it shapes); the recorded one is off by the offset.</small>"
             "</p>"]
    for item, png in zip(evidence, strips, strict=True):
        caption = (f"{_e(item['label'])} window, {_clock(item['t0'])} to {_clock(item['t1'])}:"
                   f" {_e(describe(item['offset_ms']))}, confidence "
                   f"{item['confidence']:.2f}")
        parts.append(f"<figure class=\"strip\"><figcaption>{caption}</figcaption>"
                     f"<div><img src=\"{data_uri(png)}\" alt=\"{_e(item['label'])} window\">"
                     "</div></figure>")
    return "".join(parts)


def _no_drift(record: dict) -> str:
    return why_no_drift(record.get("method") or "",
                        bool((record.get("detail") or {}).get("segments")))


def _media_facts(record: dict) -> list[tuple[str, str]]:
    media = record.get("media") or {}
    out = []
    if record.get("duration_s"):
        out.append(("length", f"{record['duration_s']:.1f} s, {record.get('analysed_s') or 0:.1f}"
                              " s analysed"))
    video, audio = media.get("video"), media.get("audio")
    if video:
        fps = f" @ {video['fps']:.3f}".rstrip("0").rstrip(".") + " fps" if video.get("fps") \
            else ""
        out.append(("video", f"{video['codec']} {video['width']}x{video['height']}{fps}"))
    if audio:
        track = (f", track {audio.get('track')} of {audio.get('tracks')}"
                 if (audio.get("tracks") or 1) > 1 else "")
        out.append(("audio", f"{audio['codec']} {audio['sample_rate']} Hz "
                             f"{audio['channels']} ch{track}"))
    if media.get("format_name"):
        out.append(("container", media["format_name"]))
    return out


def render_html(record: dict, strips: list[bytes] | None = None) -> str:
    verdict = record.get("verdict", "")
    return _page(f"avsync: {verdict} - {record.get('file', '')}",
                 file_section(record, strips=strips))


# -- the chart ---------------------------------------------------------------------------------
def _bins(windows: list[dict], t0: float, t1: float) -> list[dict]:
    """Windows binned in time: median offset, spread and median confidence of the
    measured ones, and the status that most windows of the bin had."""
    if len(windows) <= CHART_BINS:  # few enough to draw one by one
        measured = [w["status"] == "measured" for w in windows]
        return [{"t": w["t"], "status": w["status"],
                 "confidence": w.get("confidence") if ok else None,
                 **dict.fromkeys(("median", "lo", "hi"), w.get("offset_ms") if ok else None)}
                for w, ok in zip(windows, measured, strict=True)]
    n = CHART_BINS
    width = (t1 - t0) / n or 1.0
    bins: list[dict] = [{"offsets": [], "confidences": [], "statuses": {}} for _ in range(n)]
    for w in windows:
        b = bins[min(n - 1, int((w["t"] - t0) / width))]
        b["statuses"][w["status"]] = b["statuses"].get(w["status"], 0) + 1
        if w.get("offset_ms") is not None and w["status"] == "measured":
            b["offsets"].append(w["offset_ms"])
            b["confidences"].append(w.get("confidence") or 0.0)
    out = []
    for i, b in enumerate(bins):
        if not b["statuses"]:
            continue
        offsets, confidences = sorted(b["offsets"]), sorted(b["confidences"])
        out.append({"t": t0 + (i + 0.5) * width,
                    "median": offsets[len(offsets) // 2] if offsets else None,
                    "lo": offsets[0] if offsets else None,
                    "hi": offsets[-1] if offsets else None,
                    "confidence": confidences[len(confidences) // 2] if confidences else None,
                    "status": max(b["statuses"], key=b["statuses"].get)})
    return out


def chart(record: dict) -> str:
    """Offset over time (inline SVG): the tolerance band, the offset per window (or time
    bin) with its spread, each marked by its confidence (larger when surer, grey below
    --min-confidence), the drift line and the jumps; under it a status strip (measured /
    no face / no speech / low confidence) and the confidence with the --min-confidence
    line."""
    windows = record["windows"]
    std = record.get("standard") or {"lead_ms": 40, "lag_ms": -60}
    detail = record.get("detail") or {}
    bar = detail.get("min_confidence")
    if bar is None and (record.get("method") or "").startswith("lipsync"):
        bar = DEFAULT_MIN_CONFIDENCE
    t0 = 0.0
    t1 = max(record.get("duration_s") or 0.0, max(w["t"] for w in windows)) or 1.0
    bins = _bins(windows, t0, t1)
    values = [v for b in bins for v in (b["lo"], b["hi"]) if v is not None]
    need = max([abs(std["lead_ms"]), abs(std["lag_ms"]), *map(abs, values), 1.0]) * 1.15
    limit = next((n for n in NICE_LIMITS_MS if n >= need), need)  # a round axis

    def x(t: float) -> float:
        return PAD_L + (t - t0) / (t1 - t0) * (W - PAD_L - PAD_R)

    def y(ms: float) -> float:
        return OFFSET_TOP + (limit - ms) / (2 * limit) * (OFFSET_BOTTOM - OFFSET_TOP)

    def yc(confidence: float) -> float:
        return CONF_BOTTOM - confidence * (CONF_BOTTOM - CONF_TOP)

    def sure(b: dict) -> bool:
        return bar is None or (b["confidence"] or 0.0) >= bar

    svg = [f"<svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" "
           "aria-label=\"offset and confidence over time\" "
           "xmlns=\"http://www.w3.org/2000/svg\">",
           f"<rect x=\"{PAD_L}\" y=\"{y(std['lead_ms']):.1f}\" width=\"{W - PAD_L - PAD_R}\" "
           f"height=\"{y(std['lag_ms']) - y(std['lead_ms']):.1f}\" fill=\"#dafbe1\"/>",
           f"<line x1=\"{PAD_L}\" x2=\"{W - PAD_R}\" y1=\"{y(0):.1f}\" y2=\"{y(0):.1f}\" "
           "stroke=\"#8c959f\" stroke-width=\"0.8\"/>"]
    for ms in (limit, limit / 2, 0, -limit / 2, -limit):
        svg.append(f"<text x=\"{PAD_L - 6}\" y=\"{y(ms) + 4:.1f}\" font-size=\"11\" "
                   f"text-anchor=\"end\" fill=\"#57606a\">{ms:+.0f}</text>")
    for i in range(6):
        t = t0 + (t1 - t0) * i / 5
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        svg.append(f"<text x=\"{x(t):.1f}\" y=\"{H - 4}\" font-size=\"11\" "
                   f"text-anchor=\"{anchor}\" fill=\"#57606a\">{_clock(t)}</text>")
    band = [(b["t"], b["lo"], b["hi"]) for b in bins if b["lo"] is not None]
    if band:
        top = " ".join(f"{x(t):.1f},{y(hi):.1f}" for t, _, hi in band)
        bottom = " ".join(f"{x(t):.1f},{y(lo):.1f}" for t, lo, _ in reversed(band))
        svg.append(f"<polygon points=\"{top} {bottom}\" fill=\"#0969da\" opacity=\"0.12\"/>")
        line = " ".join(f"{x(b['t']):.1f},{y(b['median']):.1f}" for b in bins
                        if b["median"] is not None and sure(b))
        if line:
            svg.append(f"<polyline points=\"{line}\" fill=\"none\" stroke=\"#0969da\" "
                       "stroke-width=\"1.2\" opacity=\"0.6\"/>")
        marked = [b for b in bins if b["median"] is not None]
        if len(windows) <= CHART_BINS:  # each window: surer is larger; below the bar, grey
            for b in marked:
                radius = 1.2 + 2.8 * (b["confidence"] or 0.0)
                colour = "#0969da" if sure(b) else "#afb8c1"
                svg.append(f"<circle cx=\"{x(b['t']):.1f}\" cy=\"{y(b['median']):.1f}\" "
                           f"r=\"{radius:.1f}\" fill=\"{colour}\"/>")
        else:  # a long file: one path of dots per colour keeps the page light
            for keep, colour in ((True, "#0969da"), (False, "#afb8c1")):
                dots = "".join(f"M{x(b['t']):.1f} {y(b['median']):.1f}h0" for b in marked
                               if sure(b) == keep)
                if dots:
                    svg.append(f"<path d=\"{dots}\" stroke=\"{colour}\" stroke-width=\"3\" "
                               "stroke-linecap=\"round\"/>")
    if record.get("drift_ms_per_min") is not None and "offset_start_ms" in detail:
        measured = [w["t"] for w in windows if w["status"] == "measured"] or [t0, t1]
        svg.append(f"<line x1=\"{x(measured[0]):.1f}\" y1=\"{y(detail['offset_start_ms']):.1f}\""
                   f" x2=\"{x(measured[-1]):.1f}\" y2=\"{y(detail['offset_end_ms']):.1f}\" "
                   "stroke=\"#cf222e\" stroke-dasharray=\"5 3\" stroke-width=\"1.2\"/>")
    for jump in detail.get("jumps") or []:
        svg.append(f"<line x1=\"{x(jump['t']):.1f}\" x2=\"{x(jump['t']):.1f}\" "
                   f"y1=\"{OFFSET_TOP}\" y2=\"{OFFSET_BOTTOM}\" stroke=\"#8250df\" "
                   "stroke-width=\"1.2\"/>")
    spacing = (bins[-1]["t"] - bins[0]["t"]) / (len(bins) - 1) if len(bins) > 1 else t1 - t0
    step = max(1.0, spacing / (t1 - t0) * (W - PAD_L - PAD_R))
    for b in bins:  # one rectangle per bin, coloured by its commonest status
        colour = STATUS_COLOURS.get(b["status"], "#afb8c1")
        svg.append(f"<rect x=\"{x(b['t']) - step / 2:.1f}\" y=\"{STRIP_TOP}\" "
                   f"width=\"{step:.2f}\" height=\"{STRIP_H}\" fill=\"{colour}\"/>")
    svg.append(f"<text x=\"{PAD_L - 6}\" y=\"{STRIP_TOP + STRIP_H}\" font-size=\"10\" "
               "text-anchor=\"end\" fill=\"#57606a\">status</text>")
    for c in (0.0, 0.5, 1.0):
        svg.append(f"<text x=\"{PAD_L - 6}\" y=\"{yc(c) + 4:.1f}\" font-size=\"10\" "
                   f"text-anchor=\"end\" fill=\"#57606a\">{c:.1f}</text>")
    svg.append(f"<line x1=\"{PAD_L}\" x2=\"{W - PAD_R}\" y1=\"{yc(0):.1f}\" "
               f"y2=\"{yc(0):.1f}\" stroke=\"#d0d7de\" stroke-width=\"0.8\"/>")
    if bar is not None:
        svg.append(f"<line x1=\"{PAD_L}\" x2=\"{W - PAD_R}\" y1=\"{yc(bar):.1f}\" "
                   f"y2=\"{yc(bar):.1f}\" stroke=\"#bf8700\" stroke-dasharray=\"4 3\" "
                   "stroke-width=\"1\"/>")
    for keep, colour in ((True, "#0969da"), (False, "#afb8c1")):  # a bar per window (bin)
        bars = "".join(f"M{x(b['t']):.1f} {yc(0):.1f}V{yc(b['confidence']):.1f}" for b in bins
                       if b["confidence"] is not None and sure(b) == keep)
        if bars:
            svg.append(f"<path d=\"{bars}\" stroke=\"{colour}\" "
                       f"stroke-width=\"{max(1.0, min(6.0, step * 0.8)):.2f}\"/>")
    svg.append("</svg>")
    legend = "".join(f"<span><i style=\"background:{c}\"></i>{_e(s.replace('_', ' '))}</span>"
                     for s, c in STATUS_COLOURS.items())
    legend += ("<span><i style=\"background:#dafbe1\"></i>tolerance</span>"
               "<span><i style=\"background:#cf222e\"></i>drift</span>"
               "<span><i style=\"background:#8250df\"></i>jump</span>")
    if bar is not None:
        legend += (f"<span><i style=\"background:#bf8700\"></i>--min-confidence {bar:g}"
                   "</span><span><i style=\"background:#afb8c1\"></i>below it</span>")
    note = ("<small>" + (f"{len(windows)} windows in {len(bins)} time bins: the dots are "
                         "each bin's median offset (larger when surer), the shade its "
                         "spread, the strip its commonest status, the bars below its "
                         "median confidence" if len(windows) > len(bins) else
                         f"{len(windows)} windows: the offset of each measured one (larger "
                         "when surer), its status on the strip, its confidence below")
            + "</small>")
    return "".join(svg) + f"<div class=\"legend\">{legend}</div>{note}"


def _clock(t: float) -> str:
    if t < 60:
        return f"{t:.1f} s"
    if t >= 3600:
        return f"{int(t // 3600)}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}"
    return f"{int(t // 60)}:{int(t % 60):02d}"


# -- many files ----------------------------------------------------------------------------------
class HtmlIndex:
    """The batch page, written as records come: each file's section goes to a spool
    file at once; the table keeps a few fields per file; `close` writes the page,
    copying the sections through, so no report is held in memory twice."""

    COLUMNS = ("", "file", "verdict", "offset (ms)", "confidence", "method", "reason")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[tuple] = []
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8",  # noqa: SIM115
                                             errors="backslashreplace")

    def add(self, record: dict) -> None:
        anchor = f"f{len(self.rows)}"
        self._spool.write(file_section(record, anchor, heading="h2"))
        # an input that gave no report has no confidence, not a confidence of 0
        measured = record.get("method") is not None
        self.rows.append((anchor, record.get("file", "?"), record.get("verdict", ""),
                          record.get("offset_ms"),
                          record.get("confidence") if measured else None,
                          record.get("method") or "", record.get("reason") or "",
                          record.get("thumbnail")))

    def close(self, summary: str) -> None:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row[2]] = counts.get(row[2], 0) + 1
        chips = " ".join(f"<span class=\"tag\" style=\"background:{COLOURS.get(v, '#6e7781')}"
                         f"\">{_e(v.replace('_', ' '))}: {n}</span>"
                         for v, n in sorted(counts.items()))
        head = [f"<h1>avsync: {len(self.rows)} files</h1><p>{chips}</p>",
                f"<pre>{_e(summary)}</pre>",
                "<table><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in self.COLUMNS)
                + "</tr></thead><tbody>"]
        # the least sure first: what a person should look at; no confidence last
        rows = sorted(self.rows, key=lambda r: (r[4] is None, r[4] or 0.0))
        for anchor, file, verdict, offset, confidence, method, reason, face in rows:
            colour = COLOURS.get(verdict, "#6e7781")
            rank = list(COLOURS).index(verdict) if verdict in COLOURS else 99
            picture = f"<img class=\"face\" src=\"{_e(face)}\" alt=\"\">" if face else ""
            sure = "" if confidence is None else f"{confidence:.2f}"
            head.append(
                f"<tr><td>{picture}</td><td><a href=\"#{anchor}\">{_e(file)}</a></td>"
                f"<td data-v=\"{rank}\"><span class=\"tag\" style=\"background:{colour}\">"
                f"{_e(verdict)}</span></td>"
                f"<td class=\"num\" data-v=\"{offset if offset is not None else 'NaN'}\">"
                f"{'' if offset is None else f'{offset:+.1f}'}</td>"
                f"<td class=\"num\" data-v=\"{'NaN' if confidence is None else confidence}\">"
                f"{sure}</td>"
                f"<td>{_e(method)}</td><td>{_e(reason)}</td></tr>")
        head.append("</tbody></table><h2>Each file</h2>")
        title = f"avsync: {len(self.rows)} files"
        before, after = _page(title, "".join(head), SORT_SCRIPT, split=True)
        with open(self.path, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(before)
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, out)
            out.write(after)
        self._spool.close()
