"""Real servers for the live tests: GStreamer's RTSP server and Prometheus, on
127.0.0.1 with free ports. Both are Debian packages that .ci/run installs; where they
are missing (a developer machine), the tests that need them skip and say why."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = Path(__file__).parent / "servers" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rtsp_server_missing() -> str | None:
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer")
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} missing"
    ok = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0
    return None if ok else "GStreamer RTSP server not installed (see .ci/run)"


class RtspServer:
    """gst-rtsp-server serving one MP4 at rtsp://127.0.0.1:PORT/live."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip, self.port = clip, port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def start(self) -> RtspServer:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SCRIPT), str(self.clip),
                                      str(self.port)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} of a /metrics page ({} if it does not
    answer yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:  # not listening yet, or gone
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_for(check: Callable[[], object], timeout_s: float, every_s: float = 0.25):
    """Poll until check() is truthy; returns its value, or None at the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    return None


def prometheus_missing() -> str | None:
    return None if shutil.which("prometheus") and shutil.which("promtool") else \
        "Prometheus not installed (see .ci/run)"


class PrometheusServer:
    """A real Prometheus scraping the given targets every second, with rule files."""

    def __init__(self, folder: Path, targets: list[str], rule_files: list[Path]) -> None:
        self.folder, self.port = folder, free_port()
        rules = "\n".join(f"  - {p}" for p in rule_files)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n{rules}\n"
            "scrape_configs:\n  - job_name: avsync\n    static_configs:\n"
            f"      - targets: {targets!r}\n".replace("'", '"'))
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> dict:
        import json
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urlencode({'query': expr})}",
                                    timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class HttpFolder:
    """A real HTTP server for a folder (HLS playlists and segments) on 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

        handler = functools.partial(Quiet, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> HttpFolder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class UdpSender:
    """Sends an MPEG-TS file to udp://127.0.0.1:PORT at its own bit rate, as a
    contribution feed would arrive."""

    def __init__(self, path: Path, port: int, duration_s: float) -> None:
        import threading

        self.data, self.port = path.read_bytes(), port
        self.rate = len(self.data) / duration_s  # bytes per second
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        chunk = 188 * 7  # the usual TS-over-UDP datagram
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            started = time.monotonic()
            for at in range(0, len(self.data), chunk):
                if self.stop.is_set():
                    return
                wait = started + at / self.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                s.sendto(self.data[at : at + chunk], ("127.0.0.1", self.port))

    def __enter__(self) -> UdpSender:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(2)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte:
    the server that hangs a client which trusts it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
