"""Command line: `avsync check`, `monitor`, `generate`, `demo`, `train`.

Every failure reaches the user as one line on stderr and an exit code (0 pass,
1 outside tolerance, 2 could not measure, 3 bad input or usage) - never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from avsync import __version__, limits
from avsync.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, AvsyncError, BadInputError, UsageError
from avsync.media.redact import RedactingFilter, redact_text
from avsync.media.urls import check_input
from avsync.report import DEFAULT_MIN_CONFIDENCE

if TYPE_CHECKING:
    from avsync.report import Report

log = logging.getLogger("avsync")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 3 (bad usage) with one line, not 2 and a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


SIGN = ("sign: offset_ms > 0 means the audio LEADS the picture, < 0 that it is LATE "
        "(ITU-R BT.1359, EBU R37, SyncNet)")
EXIT_CODES = ("exit codes: 0 pass (within tolerance), 1 fail (outside), 2 not measured or "
              "uncertain (confidence below --min-confidence), 3 bad input or usage, "
              "4 internal error; with many inputs, the worst file's (4, 3, 1, 2, 0)")
SCORERS_HELP = ("--scorer: auto = the sync model this install ships (else classical); "
                "model = the learned lip-sync model; classical = lip opening against the "
                "speech envelope, no learning. Test signals (flash/beep) need neither")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="avsync", description=__doc__.splitlines()[0],
                     epilog=f"{SIGN}. {EXIT_CODES}.")
    parser.add_argument("--version", action="version", version=f"avsync {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="measure the A/V offset of a file and give a verdict",
                           description="Measure how far the sound is ahead of or behind "
                                       "the picture, and judge it against a tolerance.",
                           epilog=f"{SIGN}. {EXIT_CODES}. {SCORERS_HELP}.")
    check.add_argument("inputs", nargs="*", metavar="INPUT",
                       help="media file or URL; several, folders (searched recursively) "
                            "or - (a list on stdin) check many: see --out, --jobs, --ray")
    check.add_argument("--json", action="store_true", help="print the JSON report (schema 1)")
    band = check.add_mutually_exclusive_group()
    band.add_argument("--standard", default="ebu-r37",
                        help="tolerance preset: ebu-r37 (default), itu-r-bt1359, atsc-is191")
    band.add_argument("--tolerance", metavar="LEAD,LAG",
                        help="custom tolerance in ms, e.g. +40,-60")
    check.add_argument("--plot", metavar="PNG", help="draw offset over time to this PNG file")
    check.add_argument("--html", metavar="FILE",
                       help="a self-contained HTML report (with many inputs: an index "
                            "page with every file's section)")
    check.add_argument("--evidence", metavar="DIR",
                       help="lip sync: write the evidence (mouth crops and the sound, as "
                            "recorded and moved by the offset, of the surest windows and the "
                            "least sure) as PNG files in this folder")
    check.add_argument("--tone-hz", type=limits.TONE_HZ.arg("--tone-hz"), default=1000.0,
                       help="beep frequency of the test signal (default 1000)")
    check.add_argument("--method", choices=["auto", "test-signal", "lipsync"], default="auto",
                       help="auto (default): the test signal if there is one, else lip sync")
    check.add_argument("--max-offset", type=limits.MAX_OFFSET_MS.arg("--max-offset"),
                       default=600.0, metavar="MS",
                       help="lip sync: largest offset searched, both signs (default 600, "
                            "40 to 2000)")
    check.add_argument("--window", type=limits.WINDOW_S.arg("--window"), default=3.0,
                       metavar="S", help="lip sync: seconds per measurement window "
                                         "(default 3, 1 to 60)")
    check.add_argument("--hop", type=limits.HOP_S.arg("--hop"), default=1.0, metavar="S",
                       help="lip sync: seconds between windows (default 1, 0.2 to --window)")
    check.add_argument("--scorer", choices=["auto", "model", "classical"], default="auto",
                       help="lip sync: auto (default) = the sync model this install ships "
                            "(or --model), else classical; model = the learned sync model; "
                            "classical = lip opening vs. speech envelope correlation, no "
                            "learning (avsync/model/weights/CARD.md compares them)")
    check.add_argument("--model", metavar="ONNX",
                       help="lip sync: a sync model of your own (avsync train --onnx)")
    check.add_argument("--min-confidence", type=limits.CONFIDENCE.arg("--min-confidence"),
                       default=DEFAULT_MIN_CONFIDENCE, metavar="C",
                       help="lip sync: below this confidence the verdict is 'uncertain' "
                            f"(exit 2) instead of pass/fail (default {DEFAULT_MIN_CONFIDENCE:g}"
                            "; 0 always gives a verdict)")
    check.add_argument("--audio-track", type=_positive_int("--audio-track"), metavar="N",
                       help="measure audio track N (1 = the first); default: in a file "
                            "with several, the one with speech")
    check.add_argument("--timeout", type=limits.TIMEOUT_S.arg("--timeout"), default=10.0,
                       metavar="S", help="URLs: seconds to wait for the server (default 10)")
    batch = check.add_argument_group("many inputs")
    batch.add_argument("--manifest", action="append", default=[], metavar="FILE",
                       help="a list of inputs, one path or URL a line (# comments)")
    batch.add_argument("--glob", action="append", metavar="PATTERN",
                       help="files a folder contributes (default: media extensions)")
    batch.add_argument("--out", metavar="JSONL",
                       help="one schema-1 report per line, written as each input finishes")
    batch.add_argument("--csv", metavar="FILE", help="the same results as a spreadsheet")
    batch.add_argument("--resume", action="store_true",
                       help="skip inputs already in --out with the same size and mtime")
    batch.add_argument("--jobs", type=_positive_int("--jobs"), default=os.cpu_count() or 1,
                       help="worker processes (default: the core count)")
    batch.add_argument("--ray", metavar="ADDRESS",
                       help="run on a Ray cluster: auto, or the head's HOST:PORT "
                            "(pip install 'avsync[ray]')")
    batch.add_argument("--file-timeout", type=limits.FILE_TIMEOUT_S.arg("--file-timeout"),
                       metavar="S", help="give up on one input after S seconds")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    mon = sub.add_parser("monitor", help="measure live streams continuously; Prometheus metrics",
                         description="Measure live streams continuously and publish the "
                                     "offset, confidence and drift as Prometheus metrics.",
                         epilog=f"{SIGN}. Exit codes: 0 after SIGINT/SIGTERM or when every "
                                "input is a file read to its end, 3 bad usage (refused at "
                                f"start), 4 internal error. {SCORERS_HELP}.")
    mon.add_argument("streams", nargs="*", metavar="NAME=URL",
                     help="rtsp://, srt://, udp://, http(s):// (HLS) URLs or files; "
                          "NAME= sets the stream label")
    mon.add_argument("--config", help="TOML file with [[stream]] tables")
    mon.add_argument("--listen", default="127.0.0.1:9108",
                     help="metrics address (default 127.0.0.1:9108, loopback only)")
    mon.add_argument("--standard", default="ebu-r37", help="tolerance preset for every stream")
    mon.add_argument("--tolerance", metavar="LEAD,LAG", help="custom tolerance in ms")
    mon.add_argument("--max-offset", type=limits.MAX_OFFSET_MS.arg("--max-offset"),
                     default=600.0, metavar="MS",
                     help="largest offset searched (default 600, 40 to 2000)")
    mon.add_argument("--transport", choices=["tcp", "udp"], default="tcp",
                     help="RTSP transport (default tcp)")
    mon.add_argument("--realtime", action="store_true",
                     help="play files and VOD playlists at media speed, as live sources arrive")
    mon.add_argument("--timeout", type=limits.TIMEOUT_S.arg("--timeout"), default=5.0,
                     metavar="S",
                     help="open/read timeout per stream (default 5)")
    mon.add_argument("--scorer", choices=["auto", "model", "classical"], default="auto",
                     help="lip sync: auto (default) = the shipped sync model, else classical; "
                          "model; classical (lip opening vs. speech envelope)")
    mon.add_argument("--model", metavar="ONNX", help="lip sync: a sync model of your own")
    mon.add_argument("--retry-max", type=limits.RETRY_MAX_S.arg("--retry-max"), default=30.0,
                     metavar="S",
                     help="longest wait between reconnection attempts (default 30)")
    mon.add_argument("--shard", metavar="K/N",
                     help="watch only the streams whose name hashes to shard K of N: N "
                          "instances share one config with no coordination")
    mon.add_argument("-q", "--quiet", action="store_true", help="log lines, no live table")
    mon.add_argument("--log-format", choices=["text", "json"], default="text")

    tr = sub.add_parser("train", help="train or fine-tune the sync model on in-sync clips (CPU)")
    tr.add_argument("folders", nargs="+", help="folders of in-sync talking-head clips")
    tr.add_argument("--out", default="avsync-model.pt", help="checkpoint to write")
    tr.add_argument("--onnx", help="also export the model here, for check/monitor --model")
    tr.add_argument("--minutes", type=limits.MINUTES.arg("--minutes"), default=30.0,
                    help="training time cap (default 30)")
    tr.add_argument("--steps", type=_positive_int("--steps"), default=3000,
                    help="training steps, if they end before the time cap (default 3000)")
    tr.add_argument("--from-scratch", action="store_true",
                    help="start from random weights instead of the shipped model")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", action="store_true",
                    help="carry on from the checkpoint a stopped run left beside --out "
                    "(OUT.ckpt, written every 100 steps)")

    gen = sub.add_parser("generate", help="write a flash/beep test signal with a known offset")
    _add_generate_args(gen)

    demo = sub.add_parser("demo", help="generate a test clip with a known offset and check it")
    demo.add_argument("--offset", type=limits.OFFSET_MS.arg("--offset"), default=-80.0,
                      help="offset injected into the test signal, ms")
    demo.add_argument("--head-offset", type=limits.OFFSET_MS.arg("--head-offset"),
                      default=120.0,
                      help="offset injected into the talking head, ms")
    demo.add_argument("--dir", help="keep the clip in this folder (default: a temp folder)")
    return parser


def _positive_int(name: str):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{name} {text!r}: use a whole number from 1")
        return int(text)
    return parse


def _add_generate_args(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("out", help="output file; the extension picks the container (.mp4, .ts, .mkv)")
    gen.add_argument("--offset", type=limits.OFFSET_MS.arg("--offset"), default=0.0,
                     help="audio offset in ms; > 0 = audio leads, < 0 = audio late")
    gen.add_argument("--drift-ppm", type=limits.DRIFT_PPM.arg("--drift-ppm"), default=0.0,
                     help="audio clock error in ppm; > 0 = audio runs fast (leads more over time)")
    gen.add_argument("--duration", type=limits.DURATION_S.arg("--duration"), default=10.0,
                     help="seconds (default 10)")
    gen.add_argument("--fps", default="25", help="frame rate, e.g. 25, 29.97, 59.94")
    gen.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    gen.add_argument("--codec", default="h264", help="h264, hevc, mpeg2, mpeg4, vp9, av1, prores")
    gen.add_argument("--audio-codec", default="aac", help="aac, mp2, mp3, opus, ac3, pcm")
    gen.add_argument("--video-bitrate", type=limits.BITRATE.arg("--video-bitrate"),
                     help="bit/s (default: codec quality preset)")
    gen.add_argument("--audio-bitrate", type=limits.BITRATE.arg("--audio-bitrate"),
                     default=128_000, help="bit/s (default 128000)")
    gen.add_argument("--period", type=limits.PERIOD_S.arg("--period"), default=3.0,
                     help="seconds between events; offsets up to +-period/2 are unambiguous")


def run() -> NoReturn:
    """The console entry point (and `python -m avsync`): main(), then leave. A monitor
    stopped while a stream's thread is blocked inside FFmpeg (a server that accepted
    and went silent) must not leave the interpreter's teardown running beside that
    thread: it crashed there (exit 139) in 2 of 54 stops. Such threads hold nothing to
    save, so the process leaves at once, its output flushed."""
    code = main()
    if _reading_threads():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _reading_threads() -> list[str]:
    """avsync's stream, producer and feature threads still alive."""
    return [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(
        ("avsync-stream-", "avsync-producer-", "avsync-features-"))]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="avsync: %(message)s")
    _redact_logs()
    try:
        args = build_parser().parse_args(argv)
        return {"check": _cmd_check, "generate": _cmd_generate, "demo": _cmd_demo,
                "train": _cmd_train, "monitor": _cmd_monitor}[args.command](args)
    except AvsyncError as err:  # argparse repeats arguments word for word: redact them
        print(f"avsync: error: {redact_text(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("avsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_BAD_INPUT
    except Exception as err:  # a bug of ours: one line, and a code no verdict uses
        where = _where(err)
        print(f"avsync: internal error: {type(err).__name__}: {redact_text(str(err))}"
              f"{where} (a bug: please report it with this line; AVSYNC_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        if os.environ.get("AVSYNC_DEBUG"):
            raise
        return EXIT_INTERNAL


def _where(err: BaseException) -> str:
    """' at module.py:123', the innermost frame of avsync's own code."""
    tb, last = err.__traceback__, None
    while tb is not None:
        if "avsync" in tb.tb_frame.f_code.co_filename:
            last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    return f" at {Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno}"


def _redact_logs() -> None:
    """Whatever logs a message (we, PyAV, a library), no URL credential leaves in it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _tolerance(args: argparse.Namespace):
    from avsync.standards import get_standard, parse_tolerance

    return parse_tolerance(args.tolerance) if args.tolerance else get_standard(args.standard)


def _cmd_check(args: argparse.Namespace) -> int:
    from avsync.check import CheckConfig, check_file
    from avsync.evidence import strip_png
    from avsync.lipsync import LipSyncConfig
    from avsync.progress import ProgressBar
    from avsync.report import plot_timeline, render_text

    if not args.inputs and not args.manifest:
        raise UsageError("give a file or URL to check (or several, a folder, - or "
                         "--manifest FILE) (see 'avsync check --help')")
    limits.check_hop(args.hop, args.window)
    lipsync = LipSyncConfig(window_s=args.window, hop_s=args.hop,
                            max_offset_s=args.max_offset / 1000, scorer=args.scorer,
                            model_path=args.model)
    config = CheckConfig(tolerance=_tolerance(args), tone_hz=args.tone_hz, method=args.method,
                         lipsync=lipsync, min_confidence=args.min_confidence,
                         timeout_s=args.timeout,
                         audio_track=None if args.audio_track is None else args.audio_track - 1,
                         evidence=bool(args.evidence or args.html), thumbnail=bool(args.html))
    if args.model:
        _check_model(args.model)
    if _is_batch(args):
        return _check_many(args, config)
    args.file = args.inputs[0]
    check_input(args.file)
    _check_outputs(args)
    bar = ProgressBar("checking") if sys.stderr.isatty() and not args.quiet else None
    try:
        report = check_file(args.file, config, on_progress=bar)
    finally:
        if bar:
            bar.close()
    strips = [strip_png(e) for e in report.evidence]
    unwritten: list[str] = []  # an output that failed must not lose the result
    files = None
    if args.evidence:
        files = _write_or_say(unwritten, "--evidence", args.evidence,
                              lambda: _write_evidence(args.evidence, report, strips))
        if not report.evidence:
            log.warning("--evidence %s: no lip-sync window was measured, so there are no "
                        "strips to write", args.evidence)
    print(json.dumps(report.to_json(files), indent=2) if args.json else render_text(report))
    for warning in report.warnings:  # stderr, so they never corrupt the JSON on stdout
        log.warning(warning)
    if args.plot:
        _write_or_say(unwritten, "--plot", args.plot, lambda: plot_timeline(report, args.plot))
    if args.html:
        from avsync.html import render_html

        page = render_html({**report.to_json(files), "exit_code": report.exit_code}, strips)
        _write_or_say(unwritten, "--html", args.html, lambda: Path(args.html).write_text(
            page, encoding="utf-8", errors="backslashreplace"))
    if unwritten:
        for line in unwritten:
            log.error(line)
        return EXIT_BAD_INPUT
    return report.exit_code


def _write_or_say(unwritten: list[str], flag: str, where: str, write: Callable[[], Any]) -> Any:
    """write(); an OSError (disk full, no permission) becomes one line in unwritten."""
    try:
        return write()
    except OSError as e:
        unwritten.append(f"{flag} {where}: could not write it ({e.strerror or e})")
        return None


def _write_evidence(folder: str, report: Report, strips: list[bytes]) -> list[str]:
    """The evidence strips as PNG files in folder (made if need be); their paths."""
    Path(folder).mkdir(exist_ok=True)
    paths = []
    for evidence, png in zip(report.evidence, strips, strict=True):
        label = evidence.label.replace(" ", "-")
        path = Path(folder) / f"evidence-{evidence.t:08.1f}s-{label}.png"
        path.write_bytes(png)
        paths.append(str(path))
    return paths


def _check_model(path: str) -> None:
    """Refuse a --model that is not an ONNX sync model now, not at the first window."""
    from avsync.model.infer import ModelScorer

    if not Path(path).is_file():
        raise UsageError(f"--model {path}: no such file")
    ModelScorer(path)  # UsageError when it does not load or lacks the sync model's inputs


PLOT_FORMATS = (".png", ".svg", ".pdf")  # what --plot writes (matplotlib)


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output file is checked before any work (an hour's analysis must not end in
    an error about where to write it): not a folder, in a folder that exists, no file
    named twice, a plot format that can be written."""
    evidence = getattr(args, "evidence", None)
    if evidence and (Path(evidence).exists() and not Path(evidence).is_dir()
                     or not Path(evidence).resolve().parent.is_dir()):
        raise UsageError(f"--evidence {evidence}: give a folder (made if it does not exist, "
                         "in a folder that does)")
    named: dict[Path, str] = {}
    for flag in ("out", "csv", "html", "plot"):
        value = getattr(args, flag, None)
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"--{flag} {value}: is a folder; give a file name")
        if not path.resolve().parent.is_dir():
            raise UsageError(f"--{flag} {value}: folder does not exist")
        if flag == "plot" and path.suffix.lower() not in PLOT_FORMATS:
            raise UsageError(f"--plot {value}: give a file ending in "
                             f"{', '.join(PLOT_FORMATS)} (the formats it writes)")
        if path.resolve() in named:
            raise UsageError(f"--{named[path.resolve()]} and --{flag} name the same file "
                             f"({value}): give each its own")
        named[path.resolve()] = flag


_BATCH_FLAGS = ("out", "csv", "resume", "ray", "file_timeout", "manifest", "glob")


def _is_batch(args: argparse.Namespace) -> bool:
    """One file or URL and no batch flag: the single-file path, as it always was."""
    if len(args.inputs) != 1:
        return True
    one = args.inputs[0]
    return one == "-" or Path(one).is_dir() or any(getattr(args, f) for f in _BATCH_FLAGS)


def _check_many(args: argparse.Namespace, config) -> int:
    from avsync.batch.inputs import expand
    from avsync.batch.run import BatchOptions, run_batch

    if args.plot or args.evidence:
        flag = "--plot" if args.plot else "--evidence"
        raise UsageError(f"{flag} shows one file's lip sync: give it one input")
    if args.resume and not args.out:
        raise UsageError("--resume reads the --out file of the earlier run: give --out")
    _check_outputs(args)
    # the index shows each speaker's face; the evidence strips are a one-file page's
    config = replace(config, evidence=False, thumbnail=bool(args.html))
    inputs = expand(args.inputs, args.manifest, args.glob)
    if not inputs:
        raise UsageError("no inputs: the folders hold no media files (see --glob)")

    def show(record: dict) -> None:
        if args.json:
            print(json.dumps(record), flush=True)
            return
        offset = record.get("offset_ms")
        text = "-" if offset is None else f"{offset:+.1f} ms"
        reason = f"  ({record['reason']})" if record.get("reason") else ""
        print(f"{record['verdict'].upper():<12} {text:>11}  {record['file']}{reason}",
              flush=True)

    options = BatchOptions(out=Path(args.out) if args.out else None,
                           csv=Path(args.csv) if args.csv else None, resume=args.resume,
                           jobs=args.jobs, ray_address=args.ray,
                           file_timeout_s=args.file_timeout, progress=not args.quiet,
                           html=Path(args.html) if args.html else None)
    # `kill`, systemd and Kubernetes stop with SIGTERM: end as on Ctrl-C, so the
    # workers are stopped and what is done stays written
    signal.signal(signal.SIGTERM, _interrupt)
    return run_batch(inputs, config, options, on_record=show)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _spec_from_args(args: argparse.Namespace):
    from avsync.synth import TestSignalSpec, parse_fps, parse_size

    return TestSignalSpec(
        duration_s=args.duration, fps=parse_fps(args.fps), size=parse_size(args.size),
        offset_ms=args.offset, drift_ppm=args.drift_ppm, period_s=args.period,
        video_codec=args.codec, audio_codec=args.audio_codec,
        video_bitrate=None if args.video_bitrate is None else int(args.video_bitrate),
        audio_bitrate=int(args.audio_bitrate),
    )


def _write(out: str, spec) -> None:
    import av

    from avsync.synth import write_test_signal

    if not Path(out).resolve().parent.is_dir():
        raise UsageError(f"{out}: folder does not exist")
    try:
        truth = write_test_signal(out, spec)
    except av.FFmpegError as err:
        raise UsageError(f"cannot write {out}: {err.strerror or err}") from None
    except ValueError as err:  # e.g. a container that cannot hold the codec
        raise UsageError(f"cannot write {out}: {err}") from None
    log.info("wrote %s: %d events", out, len(truth.flash_times))


def _cmd_generate(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    _write(args.out, spec)
    print(f"wrote {args.out}: {spec.duration_s:g} s, offset {spec.offset_ms:+g} ms, "
          f"drift {spec.drift_ppm:+g} ppm")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Both paths on made-up media with a known truth: a test signal, a talking head."""
    from avsync.check import check_file
    from avsync.report import render_text
    from avsync.synth import TalkingHeadSpec, TestSignalSpec, write_talking_head

    measured = []
    with tempfile.TemporaryDirectory(prefix="avsync-demo-") as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        clip = str(folder / "demo-test-signal.mp4")
        _write(clip, TestSignalSpec(duration_s=20.0, size=(1280, 720), offset_ms=args.offset))
        print(f"generated {clip}: flash/beep test signal, audio offset {args.offset:+g} ms")
        signal = check_file(clip)
        print(render_text(signal))
        measured.append(("test signal", args.offset, signal))
        head = str(folder / "demo-talking-head.mp4")
        write_talking_head(head, TalkingHeadSpec(offset_ms=args.head_offset))
        print(f"\ngenerated {head}: synthetic talking head, audio offset "
              f"{args.head_offset:+g} ms")
        talking = check_file(head)
        print(render_text(talking))
        measured.append(("talking head", args.head_offset, talking))
    print()
    for what, truth, report in measured:
        got = "nothing measured" if report.offset_ms is None else f"{report.offset_ms:+.2f} ms"
        print(f"{what:<13} injected {truth:+.1f} ms, measured {got}")
    return 0 if all(r.offset_ms is not None for _, _, r in measured) else 2


def _cmd_train(args: argparse.Namespace) -> int:
    from avsync.model.data import media_files
    from avsync.model.infer import weights_path

    for folder in args.folders:
        if not Path(folder).is_dir():
            raise UsageError(f"{folder}: not a folder")
    # one source per folder: each is drawn equally often, so no one folder sets "in sync"
    sources = {f"{i}:{Path(folder).name}": media_files(folder)
               for i, folder in enumerate(args.folders)}
    if not any(sources.values()):
        raise UsageError(f"no media files in {', '.join(args.folders)}")
    sources = {name: paths for name, paths in sources.items() if paths}
    start = None if args.from_scratch else weights_path("sync.pt")
    if not args.from_scratch and start is None:
        raise UsageError("this install ships no sync.pt to fine-tune: use --from-scratch")
    from avsync.model.export import export
    from avsync.model.train import TrainConfig, train

    front = "crop"
    if start is not None:  # fine-tuning: the shipped model's front
        import torch

        front = torch.load(start, map_location="cpu", weights_only=False)["summary"].get(
            "front", "crop")
    config = TrainConfig(minutes=args.minutes, max_steps=args.steps, seed=args.seed,
                         init_from=None if start is None else str(start), front=front)
    try:
        train(sources, Path(args.out), config, log=lambda m: print(m, flush=True),
              resume=args.resume)
    except ValueError as err:
        raise BadInputError(str(err)) from None
    if args.onnx:
        diff = export(Path(args.out), Path(args.onnx))
        print(f"wrote {args.onnx} (torch/ONNX max difference {diff:.1e}); use it with "
              f"avsync check --model {args.onnx}")
        shipped = weights_path("calibration.json")
        if shipped is not None:
            # a fine-tuned model's evidence sits near the shipped one's: borrow its
            # confidence until tools/calibrate.py fits one on clips of your own
            target = Path(args.onnx).with_name("calibration.json")
            target.write_text(shipped.read_text())
            print(f"wrote {target}: the shipped model's confidence fit; refit it on "
                  "held-out clips of your own with tools/calibrate.py")
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from avsync.monitor.config import load_config, parse_shard, parse_stream_arg, take_shard
    from avsync.monitor.run import Monitor, MonitorOptions, parse_listen
    from avsync.monitor.view import JsonFormatter

    if args.log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.getLogger().handlers[:] = [handler]
        _redact_logs()
    logging.getLogger("avsync").setLevel(logging.INFO)
    if args.model:
        _check_model(args.model)
    defaults = {"tolerance": _tolerance(args), "max_offset_s": args.max_offset / 1000,
                "rtsp_transport": args.transport, "realtime": args.realtime,
                "scorer": args.scorer, "model_path": args.model}
    specs = [parse_stream_arg(s, defaults) for s in args.streams]
    if args.config:
        specs += load_config(args.config, defaults)
    if not specs:
        raise UsageError("no streams: give NAME=URL arguments or --config streams.toml")
    if args.shard:
        k, n = parse_shard(args.shard)
        total = len(specs)
        specs = take_shard(specs, k, n)
        log.info("shard %d/%d: %d of %d streams", k, n, len(specs), total)
        if not specs:  # a valid state for a small config: serve /metrics, watch nothing
            log.warning("shard %d/%d holds none of the %d streams", k, n, total)
    options = MonitorOptions(listen=parse_listen(args.listen), table=not args.quiet,
                             timeout_s=args.timeout, retry_max_s=args.retry_max)
    return Monitor(specs, options).run()
