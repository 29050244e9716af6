"""The transport's reports become metrics."""

from __future__ import annotations

import inspect

from livegame.telemetry import metrics
from livegame.telemetry.observers import TransportMetrics
from livegame.transport.observer import TransportObserver


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_transport_metrics_answers_every_report_of_the_observer() -> None:
    # Checked by type too: the assignment fails mypy if the shapes drift.
    observer: TransportObserver = TransportMetrics()
    reports = {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(TransportObserver, inspect.isfunction)
        if not name.startswith("_")
    }

    assert reports
    for name, signature in reports.items():
        assert inspect.signature(getattr(type(observer), name)) == signature, name


def test_a_websocket_lifetime_moves_the_gauge_and_counters() -> None:
    observer = TransportMetrics()
    open_before = _value("live_game_websocket_connections")
    resumed_before = _value("live_game_websocket_reconnects_total")
    closed_before = _value("live_game_websocket_closes_total", {"code": "1001"})

    observer.connection_opened()
    opened = _value("live_game_websocket_connections")
    observer.connection_resumed()
    observer.connection_closed(1001)

    assert opened == open_before + 1
    assert _value("live_game_websocket_connections") == open_before
    assert _value("live_game_websocket_reconnects_total") == resumed_before + 1
    assert (
        _value("live_game_websocket_closes_total", {"code": "1001"})
        == closed_before + 1
    )


def test_a_request_report_is_counted_under_its_route_template() -> None:
    labels = {"method": "POST", "endpoint": "/api/games/{id}/resign", "status": "409"}
    before = _value("http_requests_total", labels)

    TransportMetrics().request_finished("POST", "/api/games/{id}/resign", 409, 0.004)

    assert _value("http_requests_total", labels) == before + 1
