"""
Measure what tracing costs a node: ``livegame bench`` under three settings.

    python scripts/telemetry_cost.py --runs 3 --games 200 --duration 15

PostgreSQL, Redis and Kafka are started once (or taken from the environment,
as ``livegame dev`` does); each run starts a fresh node (``livegame serve``)
and loads it with ``livegame bench --http ...``. The settings take turns, so
that a machine growing busier hurts all three alike:

* ``off``: ``TELEMETRY=false``, with an OTLP endpoint set all the same, which
  must receive nothing;
* ``default``: spans exported over OTLP/HTTP, one move in a hundred traced
  (``OTEL_TRACES_SAMPLER_ARG=0.01``, the default);
* ``full``: every move traced (``OTEL_TRACES_SAMPLER_ARG=1.0``);
* ``unsampled`` (only with ``--settings``): tracing on, no move kept.

Each round runs the settings in another order (a rotation), so that a
database growing from run to run favours none of them.

The OTLP endpoint is a sink run by this script: it decodes each export,
counts its spans and answers 200, as a collector would; the node's exporter
does all of its real work (batching, encoding, HTTP). Around each load the
script reads the node's ``/metrics``: moves counted (so metrics are seen to
work in every setting) and ``process_cpu_seconds_total``, which gives the
node's CPU time per move, a figure that a shared, noisy machine disturbs far
less than throughput or latency. The report gives each run, then each
setting's median and its cost against ``off``. As fast as acks return (the
default) the figures are throughput; at a fixed ``--rate`` below capacity,
compare p99.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from livegame.app.embedded import free_port
from livegame.app.loadgen import wait_ready
from livegame.app.services import local_services

SETTINGS: dict[str, dict[str, str]] = {
    "off": {"TELEMETRY": "false", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "default": {"TELEMETRY": "true", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "full": {"TELEMETRY": "true", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    # Not run unless asked for: tracing on, no move kept; the price of the
    # ids and contexts that every unsampled move carries.
    "unsampled": {"TELEMETRY": "true", "OTEL_TRACES_SAMPLER_ARG": "0.0"},
}
DEFAULT_SETTINGS = ("off", "default", "full")

_MOVES = re.compile(r"^moves\s+([\d,]+) /s", re.MULTILINE)
_ACK = re.compile(
    r"^move ack\s+p50 ([\d.]+) ms\s+p95 ([\d.]+) ms\s+p99 ([\d.]+) ms", re.M
)
_ERRORS = re.compile(r"^errors\s+(.*)$", re.MULTILINE)


class SpanSink(ThreadingHTTPServer):
    """An OTLP/HTTP trace endpoint that counts the spans it is sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ExportHandler)
        self.spans = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self) -> int:
        """Return the spans received since the last call."""
        with self.lock:
            spans, self.spans = self.spans, 0

        return spans


class _ExportHandler(BaseHTTPRequestHandler):
    server: SpanSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        export = ExportTraceServiceRequest.FromString(body)
        count = sum(
            len(scope.spans)
            for resource in export.resource_spans
            for scope in resource.scope_spans
        )
        with self.server.lock:
            self.server.spans += count
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class NodeFigures:
    """What the node's /metrics says at one moment."""

    cpu_seconds: float
    moves: float

    @classmethod
    def scrape(cls, http: str) -> NodeFigures:
        with urllib.request.urlopen(f"{http}/metrics", timeout=10) as response:
            text = response.read().decode()
        cpu = moves = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "process_cpu_seconds_total":
                    cpu = sample.value
                elif sample.name == "live_game_moves_total":
                    moves += sample.value

        return cls(cpu, moves)


@dataclass(frozen=True)
class Run:
    setting: str
    moves_per_second: float
    p50_ms: float
    p99_ms: float
    # Node CPU time per move counted by live_game_moves_total.
    cpu_ms_per_move: float
    moves_counted: int
    spans: int
    errors: str


@contextmanager
def node(env: dict[str, str], log: Path) -> Iterator[str]:
    """Run ``livegame serve`` with ``env``; yield its HTTP base URL."""
    http = f"http://127.0.0.1:{env['HTTP_PORT']}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "livegame.app.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(http, process, log)
        yield http
    finally:
        # SIGTERM drains the node, flushing the spans it still holds.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    args: argparse.Namespace,
    setting: str,
    services: dict[str, str],
    sink: SpanSink,
    folder: Path,
) -> Run:
    secret = secrets.token_hex(24)
    http_port, ws_port = free_port(), free_port()
    env = {
        **services,
        **SETTINGS[setting],
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "AUTH_SECRET": secret,
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(http_port),
        "WS_PORT": str(ws_port),
        "NODE_ID": f"cost-{setting}",
        "REDIS_PREFIX": f"cost{secrets.token_hex(4)}:",
        "LOG_LEVEL": "WARNING",
    }
    load = [
        sys.executable,
        "-m",
        "livegame.app.cli",
        "bench",
        "--http",
        f"http://127.0.0.1:{http_port}",
        "--ws",
        f"ws://127.0.0.1:{ws_port}/ws",
        f"--secret={secret}",
        "--games",
        str(args.games),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--rate",
        str(args.rate),
    ]
    with node(env, folder / f"node-{setting}.log") as http:
        sink.take()
        before = NodeFigures.scrape(http)
        done = subprocess.run(load, capture_output=True, text=True, check=False)
        after = NodeFigures.scrape(http)
    # The node has drained: every span it made has been exported by now.
    spans = sink.take()
    if done.returncode != 0:
        raise SystemExit(f"bench failed ({setting}):\n{done.stdout}\n{done.stderr}")

    moves = _MOVES.search(done.stdout)
    ack = _ACK.search(done.stdout)
    errors = _ERRORS.search(done.stdout)
    if moves is None or ack is None:
        raise SystemExit(f"unexpected bench output:\n{done.stdout}")

    counted = after.moves - before.moves
    cpu = after.cpu_seconds - before.cpu_seconds

    return Run(
        setting,
        float(moves.group(1).replace(",", "")),
        float(ack.group(1)),
        float(ack.group(3)),
        cpu * 1000 / counted if counted else float("nan"),
        int(counted),
        spans,
        errors.group(1) if errors else "?",
    )


def report(runs: list[Run]) -> None:
    print()
    print(
        f"{'setting':<9}{'moves/s':>9}{'ack p50':>11}{'ack p99':>11}"
        f"{'cpu/move':>11}{'counted':>9}{'spans':>9}"
    )
    for run in runs:
        print(
            f"{run.setting:<9}{run.moves_per_second:>9,.0f}{run.p50_ms:>9.2f}ms"
            f"{run.p99_ms:>9.2f}ms{run.cpu_ms_per_move:>9.3f}ms"
            f"{run.moves_counted:>9,}{run.spans:>9,}  errors: {run.errors}"
        )

    print()
    print("medians, and the cost of each setting against off")
    base = _medians([run for run in runs if run.setting == "off"])
    for setting in SETTINGS:
        mine = [run for run in runs if run.setting == setting]
        if not mine:
            continue
        rate, p99, cpu = _medians(mine)
        print(
            f"{setting:<9}{rate:>7,.0f} moves/s ({(rate / base[0] - 1) * 100:+.1f}%)"
            f"  p99 {p99:.2f} ms ({(p99 / base[1] - 1) * 100:+.1f}%)"
            f"  cpu {cpu:.3f} ms/move ({(cpu / base[2] - 1) * 100:+.1f}%)"
        )


def _medians(runs: list[Run]) -> tuple[float, float, float]:
    return (
        statistics.median(run.moves_per_second for run in runs),
        statistics.median(run.p99_ms for run in runs),
        statistics.median(run.cpu_ms_per_move for run in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per setting")
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="moves/s offered in all (0: as fast as acks return); below "
        "capacity, p99 shows tracing's latency rather than queueing",
    )
    parser.add_argument(
        "--settings",
        default=",".join(DEFAULT_SETTINGS),
        help=f"comma-separated, off first (of {', '.join(SETTINGS)})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the data and logs folder"
    )
    args = parser.parse_args()
    chosen = args.settings.split(",")
    if chosen[0] != "off" or not set(chosen) <= set(SETTINGS):
        parser.error(f"--settings: off, then some of {', '.join(SETTINGS)}")

    sink = SpanSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    folder = Path(tempfile.mkdtemp(prefix="livegame-cost-"))
    print(f"load average before: {os.getloadavg()}; logs in {folder}", flush=True)
    runs: list[Run] = []
    try:
        with local_services(folder) as services:
            for round_ in range(args.runs):
                shift = round_ % len(chosen)
                for setting in chosen[shift:] + chosen[:shift]:
                    run = measure(args, setting, services.env, sink, folder)
                    runs.append(run)
                    print(
                        f"run {round_ + 1} {setting:<8}"
                        f" {run.moves_per_second:,.0f} moves/s"
                        f"  p99 {run.p99_ms:.2f} ms"
                        f"  cpu {run.cpu_ms_per_move:.3f} ms/move"
                        f"  spans {run.spans:,}",
                        flush=True,
                    )
    finally:
        sink.shutdown()

    # Kept after a failure: the node's log says why.
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"load average after: {os.getloadavg()}")
    report(runs)

    return 0


if __name__ == "__main__":
    sys.exit(main())
