"""Dashboards and alert rules query only metrics the server exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from livegame.telemetry import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "live-game-api.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# Series that Prometheus itself or the blackbox exporter make.
EXTERNAL = {"up", "probe_success", "ALERTS"}
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr
    )
    expr = re.sub(r"\$\{?\w+\}?", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", expr):
        followed_by = expr[match.end() :].lstrip()[:1]
        if followed_by != "(" and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())

    return names


def _base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)

    return name


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every name a scrape of /metrics can show, as PromQL spells it."""
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)

    return names


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]

    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"] for panel in _panels(dashboard) for target in panel["targets"]
    ]
    exprs += [note["expr"] for note in dashboard["annotations"]["list"]]

    return exprs


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket{a="b"}[5m])))',
            {"x_seconds_bucket"},
        ),
        (
            'sum(rate(a_total{status=~"5.."}[5m])) / sum(rate(a_total[$__interval]))',
            {"a_total"},
        ),
        ("max(b) > 1000 and max(deriv(b[10m])) > 0", {"b"}),
        ("sum(rate(c_total[5m])) > clamp_min(0.1 * sum(d), 50)", {"c_total", "d"}),
        ("up == 0 or probe_success{probe='node'} == 0", {"up", "probe_success"}),
        ("vector(0.05)", set()),
        ("sum(e) by (kind) offset 1h > 1e3", {"e"}),
    ],
)
def test_metric_names_are_found_in_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_alert_rules_query_only_exported_metrics(
    rules: list[dict[str, Any]], exported: set[str]
) -> None:
    for rule in rules:
        unknown = {_base(n) for n in metric_names(rule["expr"])} - exported - EXTERNAL
        assert not unknown, (rule["alert"], unknown)


def test_the_dashboard_queries_only_exported_metrics(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    for expr in _dashboard_exprs(dashboard):
        unknown = {_base(n) for n in metric_names(expr)} - exported - EXTERNAL
        assert not unknown, (expr, unknown)

    for variable in dashboard["templating"]["list"]:
        (name,) = re.findall(r"label_values\((\w+)", variable["definition"])
        assert name in exported | EXTERNAL


def test_every_slo_has_an_alert_at_its_threshold(rules: list[dict[str, Any]]) -> None:
    alerts = {rule["alert"]: rule["expr"] for rule in rules}
    thresholds = {
        "LiveGameAvailabilitySLOBreached": ("probe_success", "< 0.999"),
        "LiveGameMoveLatencyP95High": ("live_game_move_latency_seconds", "> 0.05"),
        "LiveGameMoveLatencyP99High": ("live_game_move_latency_seconds", "> 0.1"),
        "LiveGameCreationLatencyP95High": ('endpoint="/api/games"', "> 0.1"),
        "LiveGameCreationLatencyP99High": ('endpoint="/api/games"', "> 0.2"),
        "LiveGameHttpLatencyP95High": ("http_request_latency_seconds", "> 0.2"),
        "LiveGameHttpLatencyP99High": ("http_request_latency_seconds", "> 0.5"),
        "LiveGameDbQueryLatencyP95High": ("db_query_duration_seconds", "> 0.1"),
        "LiveGameDbQueryLatencyP99High": ("db_query_duration_seconds", "> 0.2"),
        "LiveGameErrorRateHigh": ('status=~"5.."}[5m]', "> 0.005"),
        "LiveGameKafkaPublishErrors": ("kafka_event_publish_errors_total", "> 0"),
        "LiveGameOutboxBacklogGrowing": ("live_game_outbox_backlog", "> 0"),
        "LiveGameActorRestarts": ("live_game_actor_restarts_total", "> 5"),
    }

    for alert, (selector, threshold) in thresholds.items():
        assert selector in alerts[alert], alert
        assert alerts[alert].rstrip().endswith(threshold), alert


def test_every_alert_says_how_bad_and_where_to_look(
    rules: list[dict[str, Any]],
) -> None:
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"].startswith("README.md#"), rule["alert"]


def test_the_dashboard_shows_what_operations_watch(dashboard: dict[str, Any]) -> None:
    used = {_base(n) for e in _dashboard_exprs(dashboard) for n in metric_names(e)}

    assert used >= {
        "live_game_moves_total",
        "live_game_move_latency_seconds",
        "http_request_latency_seconds",
        "http_requests_total",
        "http_errors_total",
        "live_game_websocket_connections",
        "live_game_websocket_reconnects_total",
        "live_game_actor_restarts_total",
        "live_game_actor_mailbox_depth",
        "live_game_outbox_backlog",
        "kafka_event_publish_errors_total",
        "kafka_event_publish_duration_seconds",
        "db_query_duration_seconds",
    }


def test_latency_panels_draw_their_slo_lines(dashboard: dict[str, Any]) -> None:
    lines = {
        "Move latency": {"vector(0.05)", "vector(0.1)"},
        "Game creation latency": {"vector(0.1)", "vector(0.2)"},
        "HTTP latency": {"vector(0.2)", "vector(0.5)"},
        "Database query latency": {"vector(0.1)", "vector(0.2)"},
    }

    for title, vectors in lines.items():
        (panel,) = [p for p in _panels(dashboard) if p["title"].startswith(title)]
        assert vectors <= {target["expr"] for target in panel["targets"]}, title


def test_every_panel_reads_the_provisioned_prometheus(
    dashboard: dict[str, Any],
) -> None:
    for panel in _panels(dashboard):
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        box = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert box["x"] + box["w"] <= 24, panel["title"]
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    folder = ALERTS.parent
    checked = subprocess.run(
        ["promtool", "check", "rules", ALERTS.name],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    tested = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
