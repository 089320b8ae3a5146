"""`avsync check FILE`: measure a file, decide a verdict, build the Report."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avsync.errors import BadInputError
from avsync.estimate.jumps import find_jumps
from avsync.estimate.offset import MEASURED, NO_FACE, Curve
from avsync.estimate.pattern import PatternAnalyser, PatternResult, unseen_part
from avsync.estimate.robust import theil_sen
from avsync.evidence import EvidenceKeeper, thumbnail_uri
from avsync.features.combined import CombinedFeaturizer
from avsync.features.luma import LumaFeaturizer
from avsync.limits import MAX_OFFSET_MS
from avsync.lipsync import LipSyncAnalyser, LipSyncConfig
from avsync.media.sources import ANALYSIS_RATE, open_input
from avsync.pipeline import RunResult, run_source
from avsync.records import MediaInfo, Window
from avsync.report import (
    DEFAULT_MIN_CONFIDENCE,
    FAIL,
    PASS,
    UNCERTAIN,
    UNMEASURED,
    Report,
    WindowResult,
)
from avsync.standards import DEFAULT_STANDARD, STANDARDS, Tolerance

# A test signal shows itself within two periods; past this much media with no beep,
# the file is talking-head content and goes to the lip-sync path.
TEST_SIGNAL_PROBE_S = 10.0


@dataclass(frozen=True)
class CheckConfig:
    tolerance: Tolerance = STANDARDS[DEFAULT_STANDARD]
    hop_s: float = 1.0  # how much media each test-signal analysis step takes
    tone_hz: float = 1000.0
    method: str = "auto"  # auto | test-signal | lipsync
    lipsync: LipSyncConfig = field(default_factory=LipSyncConfig)
    # lip sync: a verdict below this confidence is UNCERTAIN (report.DEFAULT_MIN_CONFIDENCE)
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    timeout_s: float = 10.0  # URLs: how long to wait for the server to open and send data
    audio_track: int | None = None  # 0-based; None: the one with speech (media.tracks)
    # lip sync, for reports: keep the crops and sound of a few windows (avsync.evidence),
    # and a small picture of the speaker's face
    evidence: bool = False
    thumbnail: bool = False


def check_file(
    path: str,
    config: CheckConfig | None = None,
    on_progress: Callable[[float, float | None], None] | None = None,
) -> Report:
    """Measure the A/V offset of one file. Raises BadInputError for unusable input.

    auto reads the file once for both paths: the test-signal detectors see its start
    (exact, cheap; TEST_SIGNAL_PROBE_S without a beep rules a test signal out) while
    the lip-sync analyser scores every window (it used to decode the first
    TEST_SIGNAL_PROBE_S twice).
    """
    config = config or CheckConfig()
    if config.method not in ("auto", "test-signal", "lipsync"):
        raise ValueError(f"unknown method {config.method!r}")
    if config.method == "test-signal":
        pattern = PatternAnalyser(ANALYSIS_RATE, config.tone_hz)
        info, run = _run(path, config, LumaFeaturizer(), pattern, on_progress)
        return _test_signal_report(pattern.result(), info, run, config)
    probe = open_input(path, timeout_s=config.timeout_s)  # cheap: the fps the analyser needs
    probe_info = probe.info
    probe.container.close()
    fps = (probe_info.video.fps if probe_info.video else None) or 25.0
    analyser = _lipsync_analyser(config, fps)
    lipsync_run = dict(hop_s=config.lipsync.hop_s, window_s=config.lipsync.window_s,
                       audio_margin_s=analyser.audio_margin_s)
    if config.method == "auto":
        both = _TestSignalOrLipSync(PatternAnalyser(ANALYSIS_RATE, config.tone_hz), analyser)
        info, run = _run(path, config, both.featurizer, both, on_progress, **lipsync_run)
        result = both.pattern.result()
        if result.found or result.ambiguous:
            return _test_signal_report(result, info, run, config)
        if not both.skipped_lipsync:
            common = _common(info, run, config, warnings=_warnings(info, run))
            return lipsync_report(analyser, config.tolerance, fps, common,
                                  config.min_confidence, config.thumbnail)
        # beeps and flashes that paired into nothing (so not a test signal) made it skip
        # lip sync for a while: read it again for lip sync alone, as before
        analyser = _lipsync_analyser(config, fps)
    info, run = _run(path, config, analyser.front_end(), analyser, on_progress,
                     **lipsync_run)
    common = _common(info, run, config, warnings=_warnings(info, run))
    return lipsync_report(analyser, config.tolerance, fps, common, config.min_confidence,
                          config.thumbnail)


def _lipsync_analyser(config: CheckConfig, fps: float) -> LipSyncAnalyser:
    return LipSyncAnalyser(config.lipsync, fps,
                           evidence=EvidenceKeeper() if config.evidence else None)


class _TestSignalOrLipSync:
    """One read for `auto`: every window goes to the lip-sync analyser, and its unseen
    part to the test-signal detectors for as long as a test signal is possible. Once
    both a flash and a beep were seen, it is taken for a test signal: the face front
    end is switched off and lip sync skipped (a test signal has no face to measure)."""

    def __init__(self, pattern: PatternAnalyser, lipsync: LipSyncAnalyser) -> None:
        self.pattern, self.lipsync = pattern, lipsync
        self.featurizer = CombinedFeaturizer(lipsync.front_end())
        self.skipped_lipsync = False
        self._probing = True
        self._fed_until: float | None = None

    def reset_at(self, t: float) -> None:
        self.pattern.reset_at(t)
        self.lipsync.reset_at(t)

    def feed(self, window: Window) -> None:
        if self._probing:
            self.pattern.feed(unseen_part(window, self._fed_until))
            self._fed_until = window.t1
            self._probing = self.pattern.still_possible(TEST_SIGNAL_PROBE_S)
        if self._probing and self.pattern.beeps and self.pattern.flashes:
            self.featurizer.faces = False
            self.skipped_lipsync = True
        if not self.skipped_lipsync:
            self.lipsync.feed(window)


def _test_signal_report(result: PatternResult, info: MediaInfo, run: RunResult,
                        config: CheckConfig) -> Report:
    common = _common(info, run, config, warnings=_warnings(info, run))
    if not result.found:
        return Report(method=None, offset_ms=None, confidence=0.0, drift_ms_per_min=None,
                      verdict=UNMEASURED, reason=_why_no_signal(result), **common)
    return _pattern_report(result, config.tolerance, info.video.fps, common)


def _run(path, config: CheckConfig, featurizer, analyser, on_progress,
         **kwargs) -> tuple[MediaInfo, RunResult]:
    opened = open_input(path, timeout_s=config.timeout_s, audio_track=config.audio_track)
    info = opened.info
    try:
        if opened.video is None:
            raise BadInputError(f"{info.url}: no video stream (nothing to measure audio against)")
        if opened.audio is None:
            raise BadInputError(f"{info.url}: no audio stream (nothing to measure against video)")
        progress = None
        if on_progress:
            def progress(t: float) -> None:
                on_progress(t, info.duration_s)
        kwargs.setdefault("hop_s", 1.0)
        run = run_source(opened, featurizer, analyser, on_progress=progress,
                         feature_thread=True, **kwargs)
    finally:
        opened.container.close()
    if run.first_t is None or run.stats.video_frames == 0 or run.stats.audio_samples == 0:
        reason = run.ended_early or "no decodable audio and video"
        raise BadInputError(f"{info.url}: {reason}")
    return info, run


def _warnings(info: MediaInfo, run: RunResult) -> list[str]:
    warnings = []
    if run.ended_early:
        warnings.append(f"input ended early ({run.ended_early}); measured what was readable")
    # a timestamp jump re-bases the media clock (a splice's gap is not media): then the
    # clock ends early by the jump, which is no truncation
    if info.duration_s and run.last_t is not None and run.last_t < info.duration_s - 1.0 \
            and not run.stats.timestamp_jumps:
        warnings.append(f"media ends at {run.last_t:.1f} s of the {info.duration_s:.1f} s the "
                        "container declares (truncated?)")
    if run.stats.decode_errors:
        warnings.append(f"{run.stats.decode_errors} corrupt packets skipped")
    if run.stats.timestamp_jumps:
        warnings.append(f"{run.stats.timestamp_jumps} timestamp jumps; no event spans one")
    if run.stats.timestamp_strays:
        warnings.append(f"{run.stats.timestamp_strays} items out of timestamp order dropped")
    if run.stats.video_dropped or run.stats.audio_dropped_samples:
        warnings.append("analysis fell behind and dropped data "
                        f"({run.stats.video_dropped} frames, "
                        f"{run.stats.audio_dropped_samples} audio samples)")
    return warnings


def _common(info: MediaInfo, run: RunResult, config: CheckConfig, warnings: list[str]) -> dict:
    return dict(file=info.url, media=info, tolerance=config.tolerance,
                duration_s=info.duration_s, analysed_s=run.analysed_s,
                stats=run.stats, warnings=warnings)


def _why_no_signal(result: PatternResult) -> str:
    if result.ambiguous:
        half = f"{result.period_s / 2:.3g} s" if result.period_s else "half a period"
        return (f"ambiguous test signal: {result.ambiguous} beeps sit {half} (half the "
                "flash period) from their flash, so the audio could lead or lag by that "
                "much; use a signal with a longer period")
    return (f"no flash/beep test signal found ({result.flashes} flashes, {result.beeps} beeps, "
            f"{len(result.events)} paired)")


def verdict_over_span(
    mean_ms: float, drift_ms_per_s: float, t_first: float, t_last: float, intercept_ms: float,
    tol: Tolerance,
) -> tuple[str, str | None, list[float]]:
    """PASS only if the offset stays inside the band over the whole span (drift too)."""
    ends = [intercept_ms + drift_ms_per_s * t for t in (t_first, t_last)]
    values = [mean_ms, *ends]
    worst = max(values, key=lambda v: max(v - tol.lead_ms, tol.lag_ms - v))
    verdict = PASS if all(tol.contains(v) for v in values) else FAIL
    reason = None
    if verdict == FAIL and tol.contains(mean_ms):
        reason = f"drift takes the offset to {worst:+.1f} ms within the file"
    return verdict, reason, ends


def _pattern_report(
    result: PatternResult, tol: Tolerance, fps: float | None, common: dict
) -> Report:
    offsets = [e.offset_s * 1e3 for e in result.events]
    windows = [
        WindowResult(e.flash_t, off, 1.0 if ok else 0.0, "measured" if ok else "outlier")
        for e, off, ok in zip(result.events, offsets, result.inliers, strict=True)
    ]
    # confidence: the share of flashes and beeps that found their partner, lowered
    # when the paired events disagree by more than a quarter frame
    paired = sum(result.inliers) / max(result.flashes, result.beeps)
    inlier = [o for o, ok in zip(offsets, result.inliers, strict=True) if ok]
    spread_ms = float(max(inlier) - min(inlier)) if len(inlier) > 1 else 0.0
    frame_ms = 1000 / fps if fps else 40.0
    drift_ms = (result.drift or 0.0) * 1e3  # ms of offset per s of media
    spread_allowed = frame_ms / 4 + abs(drift_ms) * (result.events[-1].flash_t -
                                                     result.events[0].flash_t)
    confidence = paired * min(1.0, spread_allowed / spread_ms) if spread_ms > 0 else paired
    mean_ms = result.offset_s * 1e3
    verdict, reason, ends = verdict_over_span(
        mean_ms, drift_ms, result.events[0].flash_t, result.events[-1].flash_t,
        result.line_intercept * 1e3, tol)
    detail = {"events": sum(result.inliers), "flashes": result.flashes, "beeps": result.beeps,
              "beeps_after_lost_audio": result.unsure, "period_s": result.period_s,
              "offset_start_ms": round(ends[0], 3), "offset_end_ms": round(ends[1], 3)}
    why = (f"{sum(result.inliers)} flash/beep events paired of {result.flashes} flashes "
           f"and {result.beeps} beeps, within {spread_ms:.1f} ms of each other")
    if result.unsure:  # their onsets may lie in the hole: read late, so left out
        why += (f"; {result.unsure} beep(s) heard first right after lost audio were "
                "not measured")
    return Report(method="test-signal", offset_ms=mean_ms, confidence=confidence,
                  drift_ms_per_min=None if result.drift is None else drift_ms * 60,
                  verdict=verdict, windows=windows, reason=reason, detail=detail, why=why,
                  **common)


def _lipsync_segments(analyser: LipSyncAnalyser, sure: list, fps: float,
                      min_confidence: float) -> tuple[list, list[dict]]:
    """Offset jumps that persist among the sure windows (confidence >= min_confidence),
    and the offset of each stretch between them (from the average of its windows'
    curves). ([], []) when the offset holds still, or when a stretch is not sure
    enough to judge on its own: then the whole clip's estimate decides."""
    if len(sure) < 8:
        return [], []
    frame_ms = 1000.0 / fps
    jumps = find_jumps(np.array([w.t for w in sure]),
                       np.array([w.offset_s * 1e3 for w in sure]),
                       min_step_ms=max(2 * frame_ms, 60.0))
    if not jumps:
        return [], []
    times = [w.t for w in analyser.result.windows]  # increasing: one window per hop
    bounds = [0] + [bisect_left(times, j.t) for j in jumps] + [None]
    segments = []
    for first, stop in zip(bounds, bounds[1:], strict=False):
        est = analyser.clip_estimate(first, stop)
        if est is None or est.offset_s is None or est.confidence < min_confidence:
            return [], []
        windows = analyser.result.windows[first:stop]
        segments.append({"t0": round(windows[0].t, 2), "t1": round(windows[-1].t, 2),
                         "offset_ms": round(float(est.offset_s) * 1e3, 1),
                         "confidence": round(float(est.confidence), 3)})
    return jumps, segments


EDGE_WINDOW_SHARE = 0.25  # windows peaking at the search's end: the offset may be past it


def at_range_edge(curve: Curve) -> bool:
    """The clip's best offset is the first or last candidate or next to it: the true
    offset may lie beyond the search range (a curve rising toward its end)."""
    scores = curve.scores
    if not np.isfinite(scores).any():
        return False
    best = int(np.nanargmax(scores))
    scored = np.flatnonzero(np.isfinite(scores))
    return bool(best <= scored[0] + 1 or best >= scored[-1] - 1)


def beyond_range_hint(max_offset_ms: float) -> str:
    widest = MAX_OFFSET_MS.hi
    if max_offset_ms >= widest:
        return f"the offset may be beyond ±{max_offset_ms:.0f} ms, the widest search"
    return f"the offset may be beyond ±{max_offset_ms:.0f} ms: try --max-offset {widest:.0f}"


def lipsync_report(analyser: LipSyncAnalyser, tol: Tolerance, fps: float, common: dict,
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                   thumbnail: bool = False) -> Report:
    res = analyser.result
    windows = [WindowResult(w.t, None if w.offset_s is None else w.offset_s * 1e3,
                            w.confidence, w.status) for w in res.windows]
    max_offset_ms = analyser.config.max_offset_s * 1e3
    detail = {"faces_seen": res.faces_seen,
              "windows_by_status": dict(Counter(w.status for w in res.windows)),
              "window_s": analyser.config.window_s, "hop_s": analyser.config.hop_s,
              "max_offset_ms": max_offset_ms,
              **analyser.scorer.describe()}
    method = analyser.method
    clip, curve = analyser.clip_estimate_and_curve()
    if clip is None or clip.offset_s is None:
        counts = detail["windows_by_status"]
        if not counts.get(NO_FACE, 0) < len(res.windows):
            reason = "no face found"
        elif clip is None:
            reason = "no window with both a face and speech"
        else:
            reason = ("lip movement and sound do not line up clearly enough to measure; "
                      + beyond_range_hint(max_offset_ms))
        return Report(method=method, offset_ms=None, confidence=0.0, drift_ms_per_min=None,
                      verdict=UNMEASURED, reason=reason, windows=windows, detail=detail,
                      **common)
    measured = [w for w in res.windows if w.status == MEASURED]
    sure = [w for w in measured if w.confidence >= min_confidence]
    mean_ms = clip.offset_s * 1e3
    drift = None
    jumps, segments = _lipsync_segments(analyser, sure, fps, min_confidence)
    if segments:  # a splice: judge every stretch; a drift across a jump means nothing
        detail["jumps"] = [{"t": round(j.t, 2), "from_ms": round(j.from_ms, 1),
                            "to_ms": round(j.to_ms, 1)} for j in jumps]
        detail["segments"] = segments
        outside = [s for s in segments if not tol.contains(s["offset_ms"])]
        verdict, reason = PASS, None
        # the verdict rests on the stretches that decide it: one stretch outside is
        # enough to fail (the surest of them), a pass needs every stretch
        confidence = (max(s["confidence"] for s in outside) if outside
                      else min(s["confidence"] for s in segments))
        if outside:
            worst = max(outside, key=lambda s: abs(s["offset_ms"]))
            verdict = FAIL
            reason = (f"the offset jumps {len(segments) - 1} time(s); from {worst['t0']:.0f} s "
                      f"to {worst['t1']:.0f} s it is {worst['offset_ms']:+.0f} ms")
        ends = (segments[0]["offset_ms"], segments[-1]["offset_ms"])
    else:
        ends_fit = (mean_ms, 0.0)
        if len(measured) >= 5 and measured[-1].t - measured[0].t >= 20.0:
            fit = theil_sen(np.array([w.t for w in measured]),
                            np.array([w.offset_s * 1e3 for w in measured]))
            drift = fit.slope  # ms per s
            ends_fit = (fit.intercept, fit.slope)
        verdict, reason, ends = verdict_over_span(
            mean_ms, 0.0 if drift is None else drift, res.windows[0].t, res.windows[-1].t,
            ends_fit[0] if drift is not None else mean_ms, tol)
        confidence = clip.confidence
    detail["offset_start_ms"] = round(float(ends[0]), 1)
    detail["offset_end_ms"] = round(float(ends[1]), 1)
    detail["min_confidence"] = min_confidence
    would = "pass" if verdict == PASS else "fail"
    edge = not segments and at_range_edge(curve)
    # as at_range_edge: the last candidate or the one next to it (the clip's curve holds
    # the candidates every window searched)
    step_s = float(np.diff(curve.offsets_s).min()) if len(curve.offsets_s) > 1 else 0.0
    edge_windows = sum(abs(w.offset_s) >= max_offset_ms / 1e3 - step_s - 1e-9
                       for w in measured)
    detail["windows_at_range_edge"] = int(edge_windows)
    if edge:  # never a verdict on a peak that may be the range's end, not the offset's
        verdict, reason = UNCERTAIN, (
            f"the best offset sits at the edge of the ±{max_offset_ms:.0f} ms search; "
            + beyond_range_hint(max_offset_ms))
    elif confidence < min_confidence:  # the estimate stays in the report, unjudged
        verdict, reason = UNCERTAIN, (
            f"confidence {confidence:.2f} is below {min_confidence:g}: the "
            f"estimate would {would}, but is not sure enough to judge (--min-confidence)")
        # no offset in the range fits: the sure windows are few, or many windows peak
        # at the range's end (an offset beyond it reads as scattered edge peaks)
        if (len(sure) < 0.5 * max(1, len(measured))
                or edge_windows >= EDGE_WINDOW_SHARE * max(1, len(measured))):
            reason += "; " + beyond_range_hint(max_offset_ms)
    detail["at_range_edge"] = edge
    face = analyser.speaker_thumbnail() if thumbnail else None
    return Report(method=method, offset_ms=mean_ms, confidence=confidence,
                  drift_ms_per_min=None if drift is None else drift * 60, verdict=verdict,
                  reason=reason, windows=windows, detail=detail,
                  why=_why_lipsync(mean_ms, measured, segments, edge, max_offset_ms, fps),
                  evidence=analyser.evidence.chosen() if analyser.evidence else [],
                  thumbnail=None if face is None else thumbnail_uri(face), **common)


def _why_lipsync(offset_ms: float, measured: list, segments: list, edge: bool,
                 max_offset_ms: float, fps: float) -> str:
    """One sentence on what the confidence rests on (the text and HTML reports)."""
    if edge:
        return f"the best offset sits at the edge of the ±{max_offset_ms:.0f} ms search"
    if segments:
        return (f"the offset jumps: {len(segments)} stretches, each measured on its own from "
                "the windows that agree within it")
    if not measured:
        return ("no window is clear on its own; the average of all the windows' curves "
                "gives the offset")
    frame_ms = 1000.0 / fps
    agree = sum(abs(w.offset_s * 1e3 - offset_ms) <= frame_ms for w in measured)
    return (f"{agree} of {len(measured)} measured windows agree within a frame "
            f"({frame_ms:.0f} ms) of {offset_ms:+.0f} ms")
