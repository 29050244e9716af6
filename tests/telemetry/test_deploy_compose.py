"""The compose stack, the image and the proxy files agree (checked statically)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from livegame.transport.auth import JwtVerifier

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
API_NODES = ("api1", "api2", "api3")
API_ENVIRONMENT = {
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "AUTH_SECRET",
    "NODE_ID",
    "HOST",
    "HTTP_PORT",
    "WS_PORT",
    "LOG_LEVEL",
    "DEBUG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
}
SERVICES = {
    "postgres",
    "redis",
    "kafka",
    "kafka-init",
    "migrate",
    *API_NODES,
    "lb",
    "prometheus",
    "blackbox",
    "grafana",
    "otel-collector",
    "jaeger",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = _load(ROOT / "docker-compose.yml")
    assert isinstance(compose, dict)

    return compose["services"]  # type: ignore[no-any-return]


def _resolved(value: str) -> str:
    """Replace ``${NAME:-default}`` by its default, as compose does when unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Map each container path of a bind mount to the file it comes from."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = source

    return mounts


def test_every_service_is_there(services: dict[str, Any]) -> None:
    assert set(services) >= SERVICES


def test_kafka_runs_in_kraft_mode_without_zookeeper(services: dict[str, Any]) -> None:
    kafka = services["kafka"]["environment"]

    assert not [name for name in services if "zookeeper" in name.lower()]
    assert not [
        name
        for name, service in services.items()
        if "zookeeper" in str(service.get("image", ""))
    ]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"].split(",")
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"]


@pytest.mark.parametrize("node", API_NODES)
def test_an_api_node_has_the_whole_environment(
    services: dict[str, Any], node: str
) -> None:
    environment = services[node]["environment"]

    assert set(environment) >= API_ENVIRONMENT
    # Compose wants strings: a YAML `false` or `8080` would be retyped.
    assert all(isinstance(value, str) for value in environment.values())
    assert environment["NODE_ID"] == node
    assert (environment["HTTP_PORT"], environment["WS_PORT"]) == ("8080", "8081")
    assert environment["DEBUG"] in {"true", "false"}


def test_the_default_secret_is_one_a_node_accepts(services: dict[str, Any]) -> None:
    for node in API_NODES:
        secret = _resolved(services[node]["environment"]["AUTH_SECRET"])
        JwtVerifier(secret)


def test_node_ids_are_unique(services: dict[str, Any]) -> None:
    ids = [services[node]["environment"]["NODE_ID"] for node in API_NODES]

    assert len(set(ids)) == len(ids)


def test_api_nodes_point_at_the_services_of_the_stack(
    services: dict[str, Any],
) -> None:
    postgres = services["postgres"]["environment"]
    for node in API_NODES:
        environment = services[node]["environment"]
        database = urlsplit(_resolved(environment["DATABASE_URL"]))
        otel = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])

        assert (database.hostname, database.port) == ("postgres", 5432)
        assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
        assert database.username == postgres["POSTGRES_USER"]
        assert database.password == _resolved(postgres["POSTGRES_PASSWORD"])
        assert urlsplit(environment["REDIS_URL"]).hostname == "redis"
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert (otel.hostname, otel.port) == ("otel-collector", 4318)


@pytest.mark.parametrize("node", API_NODES)
def test_an_api_node_serves_from_the_image_with_a_health_check(
    services: dict[str, Any], node: str
) -> None:
    service = services[node]
    check = " ".join(service["healthcheck"]["test"])

    assert service["build"]["context"] == "."
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    assert service["command"] == ["livegame", "serve"]
    assert "http://127.0.0.1:8080/health" in check
    assert service["restart"] == "unless-stopped"


def test_migrations_run_once_before_any_node(services: dict[str, Any]) -> None:
    migrate = services["migrate"]

    assert migrate["command"] == ["livegame", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["image"] == services["api1"]["image"]
    for node in API_NODES:
        condition = services[node]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_dependencies_exist_and_their_conditions_can_be_met(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in target, (name, dependency)
            if rule["condition"] == "service_completed_successfully":
                assert target.get("restart") == "no", (name, dependency)


def test_dependencies_have_no_cycle(services: dict[str, Any]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, (*path, name)
        if name in done:
            return

        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_every_mounted_file_is_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for source in _mounts(service).values():
            assert (ROOT / source).exists(), (name, source)


def test_the_load_balancer_carries_http_and_websockets_to_every_node(
    services: dict[str, Any],
) -> None:
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    mounted = _mounts(services["lb"])

    assert "./deploy/haproxy/haproxy.cfg" in mounted.values()
    assert {"8080:8080", "8081:8081"} <= set(services["lb"]["ports"])
    for node in API_NODES:
        assert re.search(rf"^\s*server {node} {node}:8080\b", config, re.M)
        assert re.search(rf"^\s*server {node} {node}:8081\b.*port 8080", config, re.M)
    # Upgraded connections are tunnels; the default 30 s would cut idle games.
    assert re.search(r"^\s*timeout tunnel 1h$", config, re.M)
    assert "uri /health" in config


def test_prometheus_scrapes_and_probes_every_node(services: dict[str, Any]) -> None:
    config = _load(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    mounted = _mounts(services["prometheus"])

    targets = {
        target
        for group in jobs["live-game-api"]["static_configs"]
        for target in group["targets"]
    }
    probes = {
        target
        for group in jobs["live-game-health"]["static_configs"]
        for target in group["targets"]
    }
    assert targets == {f"{node}:8080" for node in API_NODES}
    assert probes >= {f"http://{node}:8080/health" for node in API_NODES}
    assert "http://lb:8080/health" in probes
    for rule_file in config["rule_files"]:
        assert mounted[rule_file] == "./deploy/prometheus/alerts.yml"


def test_the_collector_receives_otlp_http_and_exports_to_jaeger() -> None:
    config = _load(DEPLOY / "otel-collector.yaml")
    pipeline = config["service"]["pipelines"]["traces"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]

    assert "otlp" in pipeline["receivers"]
    assert http.endswith(":4318")
    endpoints = [
        config["exporters"][name]["endpoint"] for name in pipeline["exporters"]
    ]
    assert "jaeger:4317" in endpoints
    assert set(pipeline["processors"]) <= set(config["processors"])


def test_grafana_provisions_its_data_sources_and_dashboards(
    services: dict[str, Any],
) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = _load(provisioning / "datasources" / "datasources.yml")
    providers = _load(provisioning / "dashboards" / "dashboards.yml")
    mounted = _mounts(services["grafana"])

    urls = {source["uid"]: source["url"] for source in datasources["datasources"]}
    assert urls["prometheus"] == "http://prometheus:9090"
    assert urls["jaeger"] == "http://jaeger:16686"
    (provider,) = providers["providers"]
    assert mounted[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounted["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def test_the_image_runs_serve_as_a_user_with_a_health_check() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    instructions = [line.split()[0] for line in lines]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]

    assert all(
        line.split()[1] == "python:3.11-slim"
        for line in lines
        if line.startswith("FROM ")
    )
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "EXPOSE 8080 8081" in lines
    assert "HEALTHCHECK" in instructions
    assert any("/health" in line for line in lines)
    assert lines[-1] == 'CMD ["livegame", "serve"]'


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert {".git", "tests", "deploy", ".venv"} <= set(ignored)
    assert "!README.md" in ignored


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_haproxy_accepts_its_configuration() -> None:
    # The node names do not resolve outside compose: warnings, not errors.
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
