"""`avsync check FILE`: measure a file, decide a verdict, build the Report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from avsync.errors import BadInputError
from avsync.estimate.pattern import PatternAnalyser, PatternResult
from avsync.features.luma import LumaFeaturizer
from avsync.media.sources import ANALYSIS_RATE, open_input
from avsync.pipeline import run_source
from avsync.report import FAIL, PASS, UNMEASURED, Report, WindowResult
from avsync.standards import DEFAULT_STANDARD, STANDARDS, Tolerance


@dataclass(frozen=True)
class CheckConfig:
    tolerance: Tolerance = STANDARDS[DEFAULT_STANDARD]
    hop_s: float = 1.0  # how much media each analysis step takes from the rings
    tone_hz: float = 1000.0


def check_file(
    path: str,
    config: CheckConfig | None = None,
    on_progress: Callable[[float, float | None], None] | None = None,
) -> Report:
    """Measure the A/V offset of one file. Raises BadInputError for unusable input."""
    config = config or CheckConfig()
    opened = open_input(path)
    info = opened.info
    try:
        if opened.video is None:
            raise BadInputError(f"{info.url}: no video stream (nothing to measure audio against)")
        if opened.audio is None:
            raise BadInputError(f"{info.url}: no audio stream (nothing to measure against video)")
        analyser = PatternAnalyser(ANALYSIS_RATE, config.tone_hz)
        progress = None
        if on_progress:
            def progress(t: float) -> None:
                on_progress(t, info.duration_s)
        run = run_source(opened, LumaFeaturizer(), analyser, config.hop_s, on_progress=progress)
    finally:
        opened.container.close()
    if run.first_t is None or run.stats.video_frames == 0 or run.stats.audio_samples == 0:
        reason = run.ended_early or "no decodable audio and video"
        raise BadInputError(f"{info.url}: {reason}")

    warnings = []
    if run.ended_early:
        warnings.append(f"input ended early ({run.ended_early}); measured what was readable")
    if info.duration_s and run.last_t is not None and run.last_t < info.duration_s - 1.0:
        warnings.append(f"media ends at {run.last_t:.1f} s of the {info.duration_s:.1f} s the "
                        "container declares (truncated?)")
    if run.stats.decode_errors:
        warnings.append(f"{run.stats.decode_errors} corrupt packets skipped")
    if run.stats.timestamp_jumps:
        warnings.append(f"{run.stats.timestamp_jumps} timestamp jumps; no event spans one")
    analysed = (run.last_t or 0) - run.first_t
    result = analyser.result()
    common = dict(file=info.url, media=info, tolerance=config.tolerance,
                  duration_s=info.duration_s, analysed_s=analysed, stats=run.stats,
                  warnings=warnings)
    if not result.found:
        return Report(method=None, offset_ms=None, confidence=0.0, drift_ms_per_min=None,
                      verdict=UNMEASURED, reason=_why_no_signal(result), **common)
    return _pattern_report(result, config.tolerance, info.video.fps, common)


def _why_no_signal(result: PatternResult) -> str:
    return (
        f"no flash/beep test signal found ({result.flashes} flashes, {result.beeps} beeps, "
        f"{len(result.events)} paired); lip-sync measurement is not available yet"
    )


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
    # the verdict holds for the whole span: the fitted offset at both ends must be inside
    t_first, t_last = result.events[0].flash_t, result.events[-1].flash_t
    ends = [result.line_intercept * 1e3 + drift_ms * t for t in (t_first, t_last)]
    mean_ms = result.offset_s * 1e3
    worst = max([mean_ms, *ends], key=lambda v: max(v - tol.lead_ms, tol.lag_ms - v))
    verdict = PASS if all(tol.contains(v) for v in [mean_ms, *ends]) else FAIL
    reason = None
    if verdict == FAIL and tol.contains(mean_ms):
        reason = f"drift takes the offset to {worst:+.1f} ms within the file"
    detail = {"events": sum(result.inliers), "flashes": result.flashes, "beeps": result.beeps,
              "period_s": result.period_s,
              "offset_start_ms": round(ends[0], 3), "offset_end_ms": round(ends[1], 3)}
    return Report(method="test-signal", offset_ms=mean_ms, confidence=confidence,
                  drift_ms_per_min=None if result.drift is None else drift_ms * 60,
                  verdict=verdict, windows=windows, reason=reason, detail=detail, **common)
