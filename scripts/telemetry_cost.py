"""
Measure what tracing costs a node: ``livegame bench`` under three settings.

    python scripts/telemetry_cost.py --runs 3 --games 200 --duration 15

Each run starts a node of its own (``livegame bench`` without ``--http``) and
the settings take turns, so that a machine growing busier hurts all three
alike:

* ``off``: ``TELEMETRY=false``, with an OTLP endpoint set all the same, which
  must receive nothing;
* ``default``: spans exported over OTLP/HTTP, one move in a hundred traced
  (``OTEL_TRACES_SAMPLER_ARG=0.01``, the default);
* ``full``: every move traced (``OTEL_TRACES_SAMPLER_ARG=1.0``).

The OTLP endpoint is a sink run by this script: it decodes each export,
counts its spans and answers 200, as a collector would; the node's exporter
does all of its real work (batching, encoding, HTTP). The report gives each
run's moves/s, move ack p99 and spans received, then each setting's median
and its cost against ``off``. As fast as acks return (the default), the
figures are throughput; at a fixed ``--rate`` below capacity, compare p99.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SETTINGS: dict[str, dict[str, str]] = {
    "off": {"TELEMETRY": "false", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "default": {"TELEMETRY": "true", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "full": {"TELEMETRY": "true", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
}

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


@dataclass
class Run:
    setting: str
    moves_per_second: float
    p50_ms: float
    p99_ms: float
    spans: int
    errors: str


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, setting: str) -> list[Run]:
        return [run for run in self.runs if run.setting == setting]


def bench(args: argparse.Namespace, setting: str, sink: SpanSink) -> Run:
    env = {**SETTINGS[setting], "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
    command = [
        sys.executable,
        "-m",
        "livegame.app.cli",
        "bench",
        "--games",
        str(args.games),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--rate",
        str(args.rate),
    ]
    for name, value in env.items():
        command += ["--server-env", f"{name}={value}"]
    sink.take()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench failed ({setting}):\n{done.stdout}\n{done.stderr}")

    moves = _MOVES.search(done.stdout)
    ack = _ACK.search(done.stdout)
    errors = _ERRORS.search(done.stdout)
    if moves is None or ack is None:
        raise SystemExit(f"unexpected bench output:\n{done.stdout}")

    return Run(
        setting,
        float(moves.group(1).replace(",", "")),
        float(ack.group(1)),
        float(ack.group(3)),
        sink.take(),
        errors.group(1) if errors else "?",
    )


def report(results: Results) -> None:
    print()
    print(f"{'setting':<9}{'moves/s':>10}{'ack p50':>10}{'ack p99':>10}{'spans':>10}")
    for run in results.runs:
        print(
            f"{run.setting:<9}{run.moves_per_second:>10,.0f}{run.p50_ms:>8.2f}ms"
            f"{run.p99_ms:>8.2f}ms{run.spans:>10,}  errors: {run.errors}"
        )

    print()
    print("median of runs, and cost against off (throughput lost, p99 added)")
    base = _medians(results.of("off"))
    for setting in SETTINGS:
        rate, p99 = _medians(results.of(setting))
        lost = (1 - rate / base[0]) * 100
        added = (p99 / base[1] - 1) * 100
        print(
            f"{setting:<9}{rate:>10,.0f} moves/s  p99 {p99:.2f} ms"
            f"   throughput {lost:+.1f}% lost, p99 {added:+.1f}%"
        )


def _medians(runs: list[Run]) -> tuple[float, float]:
    return (
        statistics.median(run.moves_per_second for run in runs),
        statistics.median(run.p99_ms for run in runs),
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
        "--settings", default=",".join(SETTINGS), help="comma-separated subset"
    )
    args = parser.parse_args()
    chosen = [name for name in args.settings.split(",") if name]

    sink = SpanSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    print(f"load before: {os.getloadavg()}", flush=True)
    results = Results()
    try:
        for round_ in range(args.runs):
            for setting in chosen:
                run = bench(args, setting, sink)
                results.runs.append(run)
                print(
                    f"run {round_ + 1} {setting:<8} {run.moves_per_second:,.0f} moves/s"
                    f"  p99 {run.p99_ms:.2f} ms  spans {run.spans:,}",
                    flush=True,
                )
    finally:
        sink.shutdown()

    print(f"load after: {os.getloadavg()}")
    if "off" in chosen:
        report(results)

    return 0


if __name__ == "__main__":
    sys.exit(main())
