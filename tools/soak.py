"""Soak the monitor: real RTSP streams for an hour through a lossy, stalling relay,
with the server killed on a schedule. Measures what a long run does to the monitor.

    python tools/soak.py --minutes 60 --kill-every 300 --out soak.json

Each stream is a clip with a known offset (flash/beep test signals, read exactly,
and synthetic talking heads, read to about a frame) served by GStreamer's RTSP
server (tests/servers/rtsp_server.py) on 127.0.0.1. The monitor (`avsync monitor`,
a separate process, RTSP over TCP) reaches each server through a relay of ours:
these kernels have no netem, so the relay drops --loss of the RTP packets
interleaved in the TCP stream, and now and then stalls a connection for longer than
the monitor's timeout or cuts it. Every --kill-every seconds all servers are killed
and restarted on the same ports.

Sampled every few seconds: the monitor's RSS, threads and open files (/proc), and
its /metrics (up, offset, reconnects, errors by reason). Reported: RSS growth, the
thread and file counts' range, reconnects, time from each server restart to every
stream measuring again, and the offset error of the first estimate after it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live import RtspServer, free_port, rtsp_server_missing, scrape  # noqa: E402


# -- the relay --------------------------------------------------------------------------------
class LossyRelay:
    """TCP relay for RTSP with interleaved RTP: drops a share of the RTP packets going to
    the client, and on request stalls or cuts the connections it carries."""

    def __init__(self, target_port: int, loss: float, seed: int = 0) -> None:
        self.target_port, self.loss = target_port, loss
        self.rng = random.Random(seed)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stall_until = 0.0
        self.dropped = self.forwarded = 0
        self.play_replies: list[str] = []  # Range and RTP-Info of each PLAY reply
        self.created = time.monotonic()  # within a second of the soak's start
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self, seconds: float) -> None:
        self.stall_until = time.monotonic() + seconds

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def close(self) -> None:
        self.sock.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:  # the server is down: the client sees the connection close
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, lossy: bool) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while time.monotonic() < self.stall_until:
                    time.sleep(0.05)
                if not lossy:
                    dst.sendall(data)
                    continue
                buf += data
                out, buf = self._filter(buf)
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def _filter(self, buf: bytes) -> tuple[bytes, bytes]:
        """Whole messages out of buf: '$' frames (RTP on even channels: dropped at the
        loss rate) and RTSP text messages (always kept)."""
        out = []
        while buf:
            if buf[0:1] == b"$":
                if len(buf) < 4:
                    break
                size = int.from_bytes(buf[2:4], "big")
                if len(buf) < 4 + size:
                    break
                frame, buf = buf[: 4 + size], buf[4 + size:]
                if frame[1] % 2 == 0 and self.rng.random() < self.loss:
                    self.dropped += 1
                else:
                    self.forwarded += 1
                    out.append(frame)
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(buf) < end + 4 + length:
                break
            # the PLAY reply's stream positions: evidence if a connection reads far off
            timing = [line for line in head.split("\r\n")
                      if line.lower().startswith(("rtp-info:", "range:"))]
            if timing:
                self.play_replies.append(f"{time.monotonic() - self.created:7.1f} s  "
                                         + " | ".join(timing))
            out.append(buf[: end + 4 + length])
            buf = buf[end + 4 + length:]
        return b"".join(out), buf


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Stream:
    name: str
    clip: Path
    truth_ms: float
    exact: bool  # a test signal: its offset is read to the sample
    server: RtspServer | None = None
    relay: LossyRelay | None = None


@dataclass
class Soak:
    samples: list[dict] = field(default_factory=list)
    restarts: list[dict] = field(default_factory=list)


def make_clips(folder: Path, seconds: float) -> list[Stream]:
    from avsync.synth import TalkingHeadSpec, TestSignalSpec, write_talking_head
    from avsync.synth.signal import write_test_signal

    streams = []
    for i, offset in enumerate((-120.0, 40.0)):
        clip = folder / f"signal{i}.mp4"
        write_test_signal(clip, TestSignalSpec(duration_s=seconds, size=(320, 180),
                                               offset_ms=offset))
        streams.append(Stream(f"signal{i}", clip, offset, True))
    for i, offset in enumerate((80.0, -160.0)):
        clip = folder / f"head{i}.mp4"
        write_talking_head(clip, TalkingHeadSpec(offset_ms=offset, duration_s=seconds))
        streams.append(Stream(f"head{i}", clip, offset, False))
    return streams


def proc_figures(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines()
                  if line.startswith("VmRSS:"))
    return {"rss_mb": rss_kb / 1024, "threads": len(os.listdir(f"/proc/{pid}/task")),
            "open_files": len(os.listdir(f"/proc/{pid}/fd"))}


def run(minutes: float, kill_every_s: float, loss: float, folder: Path,
        stall_every_s: float = 150.0, sample_every_s: float = 5.0,
        log=print) -> dict:
    streams = make_clips(folder, seconds=kill_every_s + 30.0)
    for s in streams:
        s.server = RtspServer(s.clip).start()
        s.relay = LossyRelay(s.server.port, loss, seed=zlib.crc32(s.name.encode()))
    port = free_port()
    args = [f"{s.name}=rtsp://127.0.0.1:{s.relay.port}/live" for s in streams]
    monitor = subprocess.Popen([sys.executable, "-m", "avsync", "monitor", *args, "-q",
                                "--listen", f"127.0.0.1:{port}", "--timeout", "3",
                                "--retry-max", "5"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []  # the monitor's log, each line with the soak's clock
    started = time.monotonic()

    def read_log() -> None:
        for line in monitor.stderr:
            errors.append(f"{time.monotonic() - started:7.1f} s  {line}")

    threading.Thread(target=read_log, daemon=True).start()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    soak = Soak()
    next_kill, next_stall = kill_every_s, stall_every_s / 2
    pending: dict | None = None  # the restart being recovered from
    rng = random.Random(1)
    try:
        while (now := time.monotonic() - started) < minutes * 60:
            if monitor.poll() is not None:
                raise RuntimeError(f"the monitor exited ({monitor.returncode}): "
                                   f"{''.join(errors[-3:])}")
            if now >= next_kill:
                for s in streams:  # every server down at once, back on the same port
                    s.server.kill()
                    s.relay.cut()
                time.sleep(2.0)
                for s in streams:
                    s.server = RtspServer(s.clip, s.server.port).start()
                # a stream is back once it reconnected after the kill, is up and has
                # measured again (the tracker starts empty on each connection)
                pending = {"t": round(now, 1), "recovered_s": None, "errors_ms": {},
                           "reconnects_at_kill": {s.name: (soak.samples[-1][s.name]
                                                           ["reconnects"] or 0)
                                                  if soak.samples else 0 for s in streams}}
                soak.restarts.append(pending)
                next_kill += kill_every_s
                rss = soak.samples[-1]["rss_mb"] if soak.samples else float("nan")
                log(f"{now:7.0f} s  servers killed and restarted (monitor RSS {rss:.0f} MB)")
            if now >= next_stall:
                victim = rng.choice(streams)
                if rng.random() < 0.5:
                    victim.relay.stall(8.0)  # longer than the monitor's 3 s timeout
                    log(f"{now:7.0f} s  {victim.name}: relay stalls 8 s")
                else:
                    victim.relay.cut()
                    log(f"{now:7.0f} s  {victim.name}: relay cuts the connection")
                next_stall += stall_every_s
            sample = {"t": round(now, 1), **proc_figures(monitor.pid)}
            metrics = scrape(metrics_url)
            for s in streams:
                label = (("stream", s.name),)
                offset = metrics.get(("avsync_av_offset_seconds", label))
                sample[s.name] = {"up": metrics.get(("avsync_stream_up", label)),
                                  "offset_ms": None if offset is None else offset * 1e3,
                                  "reconnects": metrics.get(("avsync_reconnects_total", label)),
                                  # evidence for a connection read far off throughout
                                  # (one test signal read 1,440 ms off for 5 minutes)
                                  "timestamp_jumps": metrics.get(
                                      ("avsync_timestamp_jumps_total", label)),
                                  "timestamp_strays": metrics.get(
                                      ("avsync_timestamp_strays_total", label)),
                                  "decode_errors": metrics.get(
                                      ("avsync_decode_errors_total", label))}
            soak.samples.append(sample)
            if pending is not None and pending["recovered_s"] is None:
                for s in streams:
                    got = sample[s.name]
                    again = (got["reconnects"] or 0) > pending["reconnects_at_kill"][s.name]
                    if again and got["up"] == 1 and got["offset_ms"] is not None \
                            and s.name not in pending["errors_ms"]:
                        pending["errors_ms"][s.name] = round(got["offset_ms"] - s.truth_ms, 2)
                if len(pending["errors_ms"]) == len(streams):
                    pending["recovered_s"] = round(now - pending["t"], 1)
                    log(f"{now:7.0f} s  all streams measuring again after "
                        f"{pending['recovered_s']} s; errors {pending['errors_ms']} ms")
            time.sleep(sample_every_s)
        final = scrape(metrics_url)
    finally:
        monitor.send_signal(signal.SIGINT)
        try:
            monitor.wait(10)
        except subprocess.TimeoutExpired:
            monitor.kill()
        for s in streams:
            s.server.kill()
            s.relay.close()
    return summarise(soak, streams, final, errors, loss)


def rss_growth_mb_per_hour(samples: list[dict]) -> float | None:
    """A robust slope, not last minus first: RSS swings by ~150 MB as streams drop and
    reconnect, so two single samples can make a flat hour look like 119 MB/h (the first
    60-minute soak did)."""
    from avsync.estimate.robust import theil_sen

    if len(samples) < 3:
        return None
    hours = [s["t"] / 3600 for s in samples]
    return round(theil_sen(hours, [s["rss_mb"] for s in samples]).slope, 1)


def rss_medians(samples: list[dict], every_s: float) -> list[float]:
    """Median RSS per `every_s` of the run: a leak climbs in every one."""
    slots: dict[int, list[float]] = {}
    for s in samples:
        slots.setdefault(int(s["t"] // every_s), []).append(s["rss_mb"])
    return [round(statistics.median(v), 1) for _, v in sorted(slots.items())]


def all_values_errors(samples: list[dict], streams: list[Stream]) -> dict:
    """Worst error and count over a bound, test signals (2 ms) and heads (80 ms)."""
    out = {}
    for exact, kind, bound in ((True, "test_signal", 2.0), (False, "talking_head", 80.0)):
        errs = [abs(x[s.name]["offset_ms"] - s.truth_ms) for x in samples for s in streams
                if s.exact == exact and x[s.name]["up"] == 1
                and x[s.name]["offset_ms"] is not None]
        out[kind] = {"values": len(errs), "max": round(max(errs), 2) if errs else None,
                     f"over_{bound:g}_ms": sum(e > bound for e in errs)}
    return out


def summarise(soak: Soak, streams: list[Stream], final: dict, errors: list[str],
              loss: float) -> dict:
    samples = soak.samples
    warm = [s for s in samples if s["t"] >= min(300.0, samples[-1]["t"] / 4)] or samples
    by_reason: dict[str, float] = {}
    for (name, labels), value in final.items():
        if name == "avsync_stream_errors_total" and value:
            reason = dict(labels)["reason"]
            by_reason[reason] = by_reason.get(reason, 0) + value
    recovered = [r["recovered_s"] for r in soak.restarts if r["recovered_s"] is not None]
    exact = [abs(e) for r in soak.restarts for n, e in r["errors_ms"].items()
             if any(s.name == n and s.exact for s in streams)]
    lip = [abs(e) for r in soak.restarts for n, e in r["errors_ms"].items()
           if any(s.name == n and not s.exact for s in streams)]
    return {
        "minutes": round(samples[-1]["t"] / 60, 1), "streams": len(streams), "loss": loss,
        "rss_mb": {"start": round(samples[0]["rss_mb"], 1),
                   "after_warm_up": round(warm[0]["rss_mb"], 1),
                   "end": round(samples[-1]["rss_mb"], 1),
                   "max": round(max(s["rss_mb"] for s in samples), 1),
                   "growth_mb_per_hour_after_warm_up": rss_growth_mb_per_hour(warm),
                   "median_by_5_min": rss_medians(samples, 300.0)},
        "threads": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)],
        "open_files": [min(s["open_files"] for s in samples),
                       max(s["open_files"] for s in samples)],
        "reconnects": {s.name: final.get(("avsync_reconnects_total",
                                          (("stream", s.name),))) for s in streams},
        "errors_by_reason": by_reason,
        "restarts": len(soak.restarts), "recovered": len(recovered),
        "recovery_s": {"median": statistics.median(recovered) if recovered else None,
                       "max": max(recovered) if recovered else None},
        "offset_error_after_recovery_ms": {
            "test_signal_max": max(exact) if exact else None,
            "test_signal_median": statistics.median(exact) if exact else None,
            "talking_head_median": statistics.median(lip) if lip else None,
            "talking_head_max": max(lip) if lip else None},
        # every value published, not only the first after a recovery: two stray frames
        # once shifted a connection 1,440 ms after its first value and this missed it
        "offset_error_all_values_ms": all_values_errors(samples, streams),
        "tracebacks": sum("Traceback" in line for line in errors),
        # the monitor's log of timestamp jumps and strays (media.clock), per stream
        "clock_log": [line.strip() for line in errors if "timestamp" in line],
        "play_replies": {s.name: s.relay.play_replies[-40:] for s in streams},
        "restarts_detail": soak.restarts,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--kill-every", type=float, default=300.0, metavar="S")
    parser.add_argument("--stall-every", type=float, default=150.0, metavar="S",
                        help="a relay stall (8 s) or cut on one stream this often")
    parser.add_argument("--loss", type=float, default=0.05,
                        help="share of RTP packets the relay drops (default 0.05)")
    parser.add_argument("--out", type=Path, help="write the summary and samples (JSON)")
    args = parser.parse_args(argv)
    missing = rtsp_server_missing()
    if missing:
        print(f"soak: {missing}", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="avsync-soak-") as tmp:
        result = run(args.minutes, args.kill_every, args.loss, Path(tmp), args.stall_every)
    detail = {k: v for k, v in result.items() if k not in ("restarts_detail", "samples")}
    print(json.dumps(detail, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
