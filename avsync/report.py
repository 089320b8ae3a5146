"""The result of `avsync check`: JSON (schema 1), human text, and a timeline plot."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from avsync import __version__
from avsync.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNMEASURED
from avsync.records import MediaInfo, SourceStats
from avsync.standards import Tolerance

SCHEMA = 1
PASS, FAIL, UNMEASURED, UNCERTAIN = "pass", "fail", "unmeasured", "uncertain"
# Lip sync: below this confidence the verdict is UNCERTAIN (exit 2), not pass or fail.
# The model's confidence is the fitted share of windows within a frame of their clip's
# answer; below 0.8 that share was at most 71% (CARD.md reliability table): a verdict
# there would be a guess in one case of three.
DEFAULT_MIN_CONFIDENCE = 0.8


@dataclass(frozen=True)
class WindowResult:
    t: float  # media time of the measurement, s
    offset_ms: float | None
    confidence: float
    status: str  # "measured", or why not: "unpaired", "no_face", "no_speech", ...


@dataclass(frozen=True)
class Report:
    file: str
    media: MediaInfo
    tolerance: Tolerance
    method: str | None  # "test-signal", or None when nothing could be measured
    offset_ms: float | None
    confidence: float
    drift_ms_per_min: float | None
    verdict: str
    duration_s: float | None
    analysed_s: float
    windows: list[WindowResult] = field(default_factory=list)
    reason: str | None = None  # why unmeasured, or what decided a fail
    stats: SourceStats = field(default_factory=SourceStats)
    warnings: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)  # method-specific figures
    # one sentence: why the confidence is what it is ("21 of 24 windows agree ...")
    why: str | None = None
    # lip sync: the windows a person can check (avsync.evidence), when asked for
    evidence: list = field(default_factory=list)
    thumbnail: str | None = None  # the speaker's face, a small data: URI, when asked for

    @property
    def fps(self) -> float | None:
        return self.media.video.fps if self.media.video else None

    @property
    def offset_frames(self) -> float | None:
        if self.offset_ms is None or not self.fps:
            return None
        return self.offset_ms * self.fps / 1000

    @property
    def exit_code(self) -> int:
        return {PASS: EXIT_PASS, FAIL: EXIT_FAIL}.get(self.verdict, EXIT_UNMEASURED)

    def to_json(self, evidence_files: list[str] | None = None) -> dict:
        """The stable, versioned report (DESIGN.md, "Conventions"); evidence_files: where
        `--evidence` wrote each evidence window's strip."""
        files = evidence_files or [None] * len(self.evidence)
        extra = {}
        if self.evidence:
            extra["evidence"] = [e.to_json(f) for e, f in zip(self.evidence, files,
                                                               strict=True)]
        if self.thumbnail:
            extra["thumbnail"] = self.thumbnail
        return {
            "schema": SCHEMA,
            "avsync_version": __version__,
            "file": self.file,
            "offset_ms": _r(self.offset_ms),
            "offset_frames": _r(self.offset_frames, 3),
            "confidence": _r(self.confidence, 3),
            "method": self.method,
            "verdict": self.verdict,
            "reason": self.reason,
            "why_confidence": self.why,
            "standard": {
                "name": self.tolerance.name,
                "lead_ms": self.tolerance.lead_ms,
                "lag_ms": self.tolerance.lag_ms,
            },
            "drift_ms_per_min": _r(self.drift_ms_per_min, 4),
            "duration_s": _r(self.duration_s, 3),
            "analysed_s": _r(self.analysed_s, 3),
            "fps": _r(self.fps, 4),
            "windows": [
                {"t": _r(w.t, 4), "offset_ms": _r(w.offset_ms), "confidence": _r(w.confidence, 3),
                 "status": w.status}
                for w in self.windows
            ],
            "media": asdict(self.media),
            "stats": asdict(self.stats),
            "warnings": list(self.warnings),
            "detail": self.detail,
            **extra,
        }


def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def describe_offset(offset_ms: float) -> str:
    """'audio 120.0 ms late (offset -120.0 ms)' - the sign convention said in words."""
    if abs(offset_ms) < 0.05:
        return "audio in sync (offset 0.0 ms)"
    side = "leads" if offset_ms > 0 else "late"
    words = f"audio leads by {offset_ms:.1f} ms" if side == "leads" else (
        f"audio {-offset_ms:.1f} ms late")
    return f"{words} (offset {offset_ms:+.1f} ms)"


def render_text(report: Report) -> str:
    lines = [f"avsync {__version__}  {report.file}"]
    media = report.media
    parts = [f"{report.duration_s:.1f} s" if report.duration_s else "length unknown"]
    if media.video:
        fps = f" @ {media.video.fps:.3f}".rstrip("0").rstrip(".") if media.video.fps else ""
        fps += " fps" if fps else ""
        parts.append(f"{media.video.codec} {media.video.width}x{media.video.height}{fps}")
    if media.audio:
        audio = media.audio
        track = ""
        if audio.tracks > 1:
            how = {"speech": ", the one with speech", "asked": ", as asked"}.get(audio.chosen_by,
                                                                                 "")
            track = f" (audio track {audio.track} of {audio.tracks}{how})"
        parts.append(f"{audio.codec} {audio.sample_rate} Hz {audio.channels} ch{track}")
    lines.append(f"  media     {', '.join(parts)}")
    if report.method:
        lines.append(f"  method    {report.method}" + _method_detail(report))
    if report.offset_ms is not None:
        frames = report.offset_frames
        in_frames = f", {frames:+.2f} frames" if frames is not None else ""
        text = describe_offset(report.offset_ms)
        lines.append(f"  offset    {text[:-1]}{in_frames})")
        lines.append(f"  confidence {report.confidence:.2f}"
                     + (f": {report.why}" if report.why else ""))
    if report.drift_ms_per_min is not None:
        lines.append(f"  drift     {report.drift_ms_per_min:+.2f} ms/min")
    elif report.offset_ms is not None:
        lines.append("  drift     not measured "
                     f"({why_no_drift(report.method, bool(report.detail.get('segments')))})")
    for segment in report.detail.get("segments", []):
        offset = segment["offset_ms"]
        text = "not measured" if offset is None else describe_offset(offset)
        lines.append(f"  {segment['t0']:7.1f}-{segment['t1']:.1f} s  {text}")
    tol = report.tolerance
    verdict = {
        PASS: f"PASS - within {tol.title} ({tol.band})",
        FAIL: f"FAIL - outside {tol.title} ({tol.band})",
        UNCERTAIN: f"UNCERTAIN - not judged against {tol.title} ({tol.band})",
    }.get(report.verdict, "NOT MEASURED")
    if report.reason:
        verdict += f": {report.reason}"
    lines.append(f"  verdict   {verdict}")
    return "\n".join(lines)


def why_no_drift(method: str, segmented: bool) -> str:
    """Why a report has no drift figure (the text report and the HTML page say it alike)."""
    if method == "test-signal":
        return "it needs 3 flash/beep events"
    if segmented:
        return "the offset jumps: each stretch is judged on its own"
    return "it needs measured windows over 20 s or more"


def _method_detail(report: Report) -> str:
    d = report.detail
    if report.method == "test-signal" and "events" in d:
        plural = "" if d["events"] == 1 else "s"
        return (f" (flash/beep): {d['events']} event{plural} measured"
                f" of {d['flashes']} flashes, {d['beeps']} beeps")
    if report.method.startswith("lipsync") and report.windows:
        counts: dict[str, int] = {}
        for w in report.windows:
            counts[w.status] = counts.get(w.status, 0) + 1
        measured = counts.pop("measured", 0)
        others = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        faces = d.get("faces_seen") or 0
        # one face needs no word (and "1 face seen" beside "6 no face" read as a
        # contradiction); several say why one of them was measured
        return (f": {measured} of {len(report.windows)} windows measured"
                + (f" ({others})" if others else "")
                + (f", up to {faces} faces in view: the speaker's lips measured"
                   if faces > 1 else ""))
    return ""


def plot_timeline(report: Report, path: str) -> None:
    """Offset over time with the tolerance band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tol = report.tolerance
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    end = report.duration_s or max((w.t for w in report.windows), default=1.0)
    ax.axhspan(tol.lag_ms, tol.lead_ms, color="tab:green", alpha=0.15,
               label=f"{tol.title} {tol.band}")
    ax.axhline(0, color="grey", lw=0.8)
    measured = [w for w in report.windows if w.offset_ms is not None]
    if measured:
        ax.plot([w.t for w in measured], [w.offset_ms for w in measured], "o-", ms=3,
                color="tab:blue", label="offset per window")
    for status in sorted({w.status for w in report.windows} - {"measured"}):
        ts = [w.t for w in report.windows if w.status == status]
        ax.plot(ts, [0] * len(ts), "x", label=status.replace("_", " "))
    ax.set_xlim(0, end)
    ax.set_xlabel("media time (s)")
    ax.set_ylabel("offset (ms), > 0 = audio leads")
    title = report.file
    if report.offset_ms is not None:
        title += f" - {describe_offset(report.offset_ms)}"
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
