"""Configuration from the environment, and the small commands of the CLI."""

from __future__ import annotations

import anyio
import pytest

from livegame.app.cli import main
from livegame.app.config import VARIABLES, ConfigError, Settings, describe
from livegame.transport.auth import JwtVerifier

SECRET = "a-test-secret-of-at-least-32-bytes-long"


def test_every_variable_has_a_default_that_parses() -> None:
    settings = Settings.from_env({})

    assert settings.http_port == 8080
    assert settings.ws_port == 8081
    assert (settings.db_pool_min, settings.db_pool_max) == (20, 40)
    assert settings.kafka_topic == "live-game.events"
    assert settings.node_id  # the host name when NODE_ID is unset


def test_values_from_the_environment_win() -> None:
    settings = Settings.from_env(
        {"HTTP_PORT": "9000", "DEBUG": "true", "NODE_ID": "n7", "LOG_LEVEL": "debug"}
    )

    assert settings.http_port == 9000
    assert settings.debug is True
    assert settings.node_id == "n7"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PORT", "eighty"),
        ("DB_POOL_MIN", "50"),
        ("KAFKA_IDEMPOTENCE", "maybe"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("LOG_LEVEL", "LOUD"),
        ("OUTBOX_RETENTION_SECONDS", "-1"),
        ("CORS_ORIGINS", "chess.example.com"),
        ("CORS_ORIGINS", "https://chess.example.com/play"),
        ("AUTH_URL", "auth.example.com/introspect"),
        ("AUTH_TIMEOUT_SECONDS", "0"),
        ("MAX_CONNECTIONS_PER_USER", "0"),
    ],
)
def test_a_bad_value_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_configuration_table_lists_every_variable() -> None:
    table = describe()

    for variable in VARIABLES:
        assert f"`{variable.name}`" in table


def test_token_prints_a_token_the_node_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["token", "alice", "--role", "admin", "--secret", SECRET])
    token = capsys.readouterr().out.strip()

    principal = anyio.run(JwtVerifier(SECRET).verify, token)

    assert code == 0
    assert principal.user_id == "alice"
    assert principal.is_admin


def test_token_without_a_secret_fails_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTH_SECRET", raising=False)

    code = main(["token", "alice"])

    assert code == 2
    assert "AUTH_SECRET" in capsys.readouterr().err


def test_serve_refuses_to_start_without_a_usable_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_SECRET", "short")

    assert main(["serve"]) == 2
    assert "32 bytes" in capsys.readouterr().err


def test_cors_origins_are_a_comma_separated_list() -> None:
    settings = Settings.from_env(
        {"CORS_ORIGINS": " https://chess.example.com/, http://localhost:5173 ,"}
    )

    assert settings.origins == {"https://chess.example.com", "http://localhost:5173"}
    assert Settings.from_env({"CORS_ORIGINS": "*"}).origins == {"*"}
    assert Settings.from_env({}).origins == frozenset()
