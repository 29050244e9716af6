"""
``livegame dev``: one node and everything it needs, on a bare machine.

Services named in the environment (``DATABASE_URL``, ``REDIS_URL``,
``KAFKA_BOOTSTRAP_SERVERS``) are used as they are; the others are started
as child processes from PyPI wheels, with their data under one folder. The
node runs in this process; Ctrl-C stops it and then every child it started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import anyio

from livegame.app.config import Settings
from livegame.app.services import local_services


def _secret(folder: Path) -> str:
    """Return the dev AUTH_SECRET, made once and kept with the data."""
    path = folder / "auth_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _banner(settings: Settings, started: list[str]) -> str:
    from livegame.transport.auth import mint_token

    def token(user: str, *roles: str) -> str:
        return mint_token(
            settings.auth_secret, user, roles=roles, ttl_seconds=7 * 86400
        )

    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::"} else settings.host
    lines = [
        "live-game-api dev node is up",
        f"  HTTP       http://{host}:{settings.http_port}  (/health, /openapi.json)",
        f"  WebSocket  ws://{host}:{settings.ws_port}/ws",
        f"  metrics    http://{host}:{settings.http_port}/metrics",
        f"  PostgreSQL {settings.database_url}",
        f"  Redis      {settings.redis_url}",
        f"  Kafka      {settings.kafka_bootstrap_servers}",
        f"  topic      {settings.kafka_topic}",
        f"  started here: {', '.join(started) or 'nothing (all from the environment)'}",
        "",
        "tokens (valid 7 days):",
        f"  alice  {token('alice')}",
        f"  bob    {token('bob')}",
        f"  admin  {token('admin', 'admin')}",
        "",
        "create a game:",
        f"  curl -s -X POST http://{host}:{settings.http_port}/api/games \\",
        "    -H 'Authorization: Bearer <alice token>' \\",
        '    -d \'{"white": "alice", "black": "bob", '
        '"clock": {"initial": 300, "increment": 2}}\'',
        "then move as white (ply is the number of moves already played):",
        f"  curl -s -X POST http://{host}:{settings.http_port}/api/games/<id>/moves \\",
        "    -H 'Authorization: Bearer <alice token>' \\",
        '    -d \'{"uci": "e2e4", "ply": 0}\'',
        "",
        "Ctrl-C stops the node and the services started here.",
    ]
    return "\n".join(lines)


def run_dev(
    data_dir: str = ".livegame", http_port: int = 8080, ws_port: int = 8081
) -> int:
    """Start missing services, migrate, run a node until interrupted."""
    from livegame.app.node import run_node

    folder = Path(data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AUTH_SECRET", _secret(folder))
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("HTTP_PORT", str(http_port))
    env.setdefault("WS_PORT", str(ws_port))
    env.setdefault("NODE_ID", "dev-1")
    # Readable lines on a terminal; a deployment logs JSON.
    env.setdefault("DEBUG", "true")
    env.setdefault("DB_POOL_MIN", "2")
    env.setdefault("DB_POOL_MAX", "10")
    # A front end on its own dev server (another port) may call this node.
    env.setdefault("CORS_ORIGINS", "*")
    with local_services(folder, env) as services:
        started = ", ".join(services.started) or "none"
        print(f"services started under {folder}: {started}", flush=True)
        settings = Settings.from_env(services.env)
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(
                run_node,
                settings,
                lambda: print(_banner(settings, services.started), flush=True),
            )
        print("stopping ...", flush=True)

    return 0
