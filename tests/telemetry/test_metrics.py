"""The metrics module exports exactly the names and labels of OPERATIONS.md."""

from __future__ import annotations

import asyncio
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livegame.telemetry import metrics
from livegame.telemetry.observers import TransportMetrics

# Exposed name -> (type, label names), as a scraper sees them.
OPERATIONS_METRICS = {
    "http_requests_total": ("counter", {"method", "endpoint", "status"}),
    "http_request_latency_seconds": ("histogram", {"method", "endpoint"}),
    "http_errors_total": ("counter", {"status"}),
    "live_game_active_games": ("gauge", set()),
    "live_game_moves_total": ("counter", {"result"}),
    "live_game_move_latency_seconds": ("histogram", set()),
    "live_game_websocket_connections": ("gauge", set()),
    "live_game_websocket_reconnects_total": ("counter", set()),
    "db_query_duration_seconds": ("histogram", {"operation"}),
    "external_service_calls_total": ("counter", {"service", "status"}),
    "external_service_call_duration_seconds": ("histogram", {"service"}),
    "kafka_events_published_total": ("counter", {"event_type", "status"}),
    "kafka_event_publish_duration_seconds": ("histogram", set()),
    "kafka_event_publish_errors_total": ("counter", set()),
}
RUNTIME_METRICS = {
    "live_game_actors": ("gauge", {"kind"}),
    "live_game_actor_mailbox_depth": ("gauge", {"kind"}),
    "live_game_actor_mailbox_depth_max": ("gauge", {"kind"}),
    "live_game_actor_messages_processed_total": ("counter", {"kind"}),
    "live_game_actor_restarts_total": ("counter", {"kind"}),
    "live_game_actor_mailbox_full_total": ("counter", {"kind"}),
    "live_game_outbox_backlog": ("gauge", set()),
    "live_game_games_ended_total": ("counter", {"status"}),
    "live_game_websocket_closes_total": ("counter", {"code"}),
    "live_game_websocket_frames_rejected_total": ("counter", {"code"}),
    "db_pool_connections": ("gauge", {"state"}),
    "db_pool_max_connections": ("gauge", set()),
}
# Collectors every Python process exports, not ours to name.
STANDARD_PREFIXES = ("process_", "python_")
SLO_EDGES = (0.05, 0.1, 0.2, 0.5)


def _exercise_every_metric() -> None:
    """Give every labelled metric one child, so that its samples show."""
    observer = TransportMetrics()
    observer.request_finished("POST", "/api/games/{id}/moves", 200, 0.01)
    observer.request_finished("GET", "/api/games/{id}", 404, 0.002)
    observer.connection_opened()
    observer.connection_resumed()
    observer.frame_rejected("bad_request")
    observer.connection_closed(1000)
    metrics.observe_move("valid", 0.004)
    metrics.count_game_end("resign")
    metrics.db_query("load_game").observe(0.003)
    with metrics.external_call("auth_api"):
        pass
    metrics.record_kafka_publish("move_played", ok=True, seconds=0.02)
    kind = metrics.actor_metrics("game")
    kind.processed.inc()
    kind.restarts.inc(0)
    kind.mailbox_full.inc(0)
    metrics.watch_actors(lambda: [("game", 2)])
    metrics.watch_db_pool(lambda: (20, 15, 40))


@pytest.fixture
def exposition() -> str:
    _exercise_every_metric()
    try:
        body, _ = metrics.render()
    finally:
        metrics.watch_actors(None)
        metrics.watch_db_pool(None)

    return body.decode()


def _types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def _label_names(text: str) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        names = labels.setdefault(family.name, set())
        for sample in family.samples:
            names.update(key for key in sample.labels if key != "le")

    return labels


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_exposed_names_are_exactly_the_declared_ones(exposition: str) -> None:
    ours = {
        name for name in _types(exposition) if not name.startswith(STANDARD_PREFIXES)
    }

    assert ours == set(OPERATIONS_METRICS) | set(RUNTIME_METRICS)


def test_every_metric_has_its_type_and_labels(exposition: str) -> None:
    types = _types(exposition)
    labels = _label_names(exposition)

    for name, (kind, label_names) in {**OPERATIONS_METRICS, **RUNTIME_METRICS}.items():
        assert types[name] == kind, name
        family = name.removesuffix("_total") if kind == "counter" else name
        assert labels[family] == label_names, name


def test_no_counter_exposes_a_created_series(exposition: str) -> None:
    # A label value may say "game_created"; only series names matter here.
    names = {
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }

    assert not [name for name in names if name.endswith("_created")]


def test_histogram_buckets_have_edges_on_the_slo_thresholds() -> None:
    histograms = [
        metrics.HTTP_REQUEST_LATENCY,
        metrics.MOVE_LATENCY,
        metrics.DB_QUERY_DURATION,
        metrics.EXTERNAL_CALL_DURATION,
        metrics.KAFKA_PUBLISH_DURATION,
    ]
    metrics.MOVE_LATENCY.observe(0.0)
    metrics.KAFKA_PUBLISH_DURATION.observe(0.0)

    for histogram in histograms:
        for family in histogram.collect():
            edges = {
                float(sample.labels["le"])
                for sample in family.samples
                if sample.name.endswith("_bucket")
            }
            assert edges, family.name
            assert set(SLO_EDGES) <= edges, family.name


def test_no_label_can_hold_an_id(exposition: str) -> None:
    allowed = {
        "method",
        "endpoint",
        "status",
        "result",
        "operation",
        "service",
        "event_type",
        "kind",
        "code",
        "state",
    }

    for name, labels in _label_names(exposition).items():
        if not name.startswith(STANDARD_PREFIXES):
            assert labels <= allowed, name


def test_unknown_http_methods_fold_into_other() -> None:
    before = _value(
        "http_requests_total", {"method": "OTHER", "endpoint": "/x", "status": "405"}
    )

    metrics.observe_http("BREW", "/x", 405, 0.001)

    after = _value(
        "http_requests_total", {"method": "OTHER", "endpoint": "/x", "status": "405"}
    )
    assert after == before + 1


def test_only_responses_of_400_and_above_count_as_errors() -> None:
    before_ok = _value("http_errors_total", {"status": "201"})
    before_503 = _value("http_errors_total", {"status": "503"})

    metrics.observe_http("POST", "/api/games", 201, 0.01)
    metrics.observe_http("POST", "/api/games", 503, 0.01)

    assert _value("http_errors_total", {"status": "201"}) == before_ok
    assert _value("http_errors_total", {"status": "503"}) == before_503 + 1


def test_every_move_result_is_exported_from_the_start(exposition: str) -> None:
    results = set(
        re.findall(r'^live_game_moves_total\{result="(\w+)"\}', exposition, re.M)
    )

    assert results == set(metrics.MOVE_RESULTS)
    assert {"valid", "invalid", "checkmate", "stalemate"} <= results


def test_external_call_records_ok_timeout_and_error() -> None:
    def count(status: str) -> float:
        return _value(
            "external_service_calls_total", {"service": "peer_node", "status": status}
        )

    before = {status: count(status) for status in ("ok", "timeout", "error")}

    with metrics.external_call("peer_node"):
        pass
    with pytest.raises(TimeoutError), metrics.external_call("peer_node"):
        raise TimeoutError
    with pytest.raises(ConnectionError), metrics.external_call("peer_node"):
        raise ConnectionError

    assert {status: count(status) - before[status] for status in before} == {
        "ok": 1,
        "timeout": 1,
        "error": 1,
    }


def test_a_cancelled_external_call_is_not_recorded() -> None:
    before = _value(
        "external_service_call_duration_seconds_count", {"service": "bot_orchestrator"}
    )

    with (
        pytest.raises(asyncio.CancelledError),
        metrics.external_call("bot_orchestrator"),
    ):
        raise asyncio.CancelledError

    after = _value(
        "external_service_call_duration_seconds_count", {"service": "bot_orchestrator"}
    )
    assert after == before


def test_a_failed_kafka_publish_counts_as_an_error_twice() -> None:
    labels = {"event_type": "game_ended", "status": "error"}
    before = _value("kafka_events_published_total", labels)
    errors_before = _value("kafka_event_publish_errors_total")

    metrics.record_kafka_publish("game_ended", ok=False, seconds=0.5)

    assert _value("kafka_events_published_total", labels) == before + 1
    assert _value("kafka_event_publish_errors_total") == errors_before + 1


def test_websocket_close_codes_outside_known_ranges_fold_into_other() -> None:
    before = _value("live_game_websocket_closes_total", {"code": "other"})

    metrics.count_websocket_close(3999)
    metrics.count_websocket_close(1006)

    assert _value("live_game_websocket_closes_total", {"code": "other"}) == before + 1
    assert _value("live_game_websocket_closes_total", {"code": "1006"}) >= 1


def test_actor_gauges_sum_and_max_mailboxes_by_kind_at_scrape() -> None:
    actors = [("game", 3), ("game", 0), ("game", 7), ("writer", 1)]
    metrics.watch_actors(lambda: iter(actors))
    try:
        live = _value("live_game_actors", {"kind": "game"})
        depth = _value("live_game_actor_mailbox_depth", {"kind": "game"})
        deepest = _value("live_game_actor_mailbox_depth_max", {"kind": "game"})
        writers = _value("live_game_actors", {"kind": "writer"})
    finally:
        metrics.watch_actors(None)

    assert (live, depth, deepest, writers) == (3, 10, 7, 1)
    assert (
        metrics.REGISTRY.get_sample_value("live_game_actors", {"kind": "game"}) is None
    )


def test_pool_gauges_split_open_connections_into_busy_and_idle() -> None:
    metrics.watch_db_pool(lambda: (30, 4, 40))
    try:
        busy = _value("db_pool_connections", {"state": "busy"})
        idle = _value("db_pool_connections", {"state": "idle"})
        most = _value("db_pool_max_connections")
    finally:
        metrics.watch_db_pool(None)

    assert (busy, idle, most) == (26, 4, 40)


def test_actor_metrics_are_bound_once_per_kind() -> None:
    assert metrics.actor_metrics("relay") is metrics.actor_metrics("relay")


def test_render_speaks_openmetrics_when_asked() -> None:
    _, plain = metrics.render()
    body, negotiated = metrics.render("application/openmetrics-text; version=1.0.0")

    assert plain.startswith("text/plain")
    assert negotiated.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
