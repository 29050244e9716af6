"""``livegame dev`` on a machine with no services: it starts its own, serves, stops."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from node_helpers import eventually, node_environment

from livegame.app.embedded import accepts, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FOOLS_MATE = [("alice", "f2f3"), ("bob", "e7e5"), ("alice", "g2g4"), ("bob", "d8h4")]


def answers(port: int) -> bool:
    return accepts(port, timeout=1.0)


def banner_ports(banner: str) -> list[int]:
    """Every loopback port the banner names."""
    return [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", banner)]


def banner_tokens(banner: str) -> dict[str, str]:
    return dict(re.findall(r"^  (alice|bob|admin)\s+(\S+)$", banner, re.MULTILINE))


def start_dev(
    data_dir: Path, http_port: int, ws_port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """``livegame dev`` with none of the services configured."""
    command = [sys.executable, "-m", "livegame.app.cli", "dev"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            env=node_environment(
                {"HTTP_PORT": str(http_port), "WS_PORT": str(ws_port)}
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_dev_starts_everything_serves_a_game_and_stops_it_all(
    tmp_path: Path,
) -> None:
    http_port, ws_port = free_port(), free_port()
    log_path = tmp_path / "dev.log"
    process = start_dev(tmp_path / "data", http_port, ws_port, log_path)
    try:

        def banner_printed() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"dev exited early:\n{log_path.read_text()}")
            return "Ctrl-C stops" in log_path.read_text(errors="replace")

        await eventually(banner_printed, timeout=120)
        banner = log_path.read_text(errors="replace")
        assert "started here: PostgreSQL, Redis, Kafka" in banner
        tokens = banner_tokens(banner)
        assert set(tokens) == {"alice", "bob", "admin"}
        ports = banner_ports(banner)
        assert {http_port, ws_port} <= set(ports)
        assert len(set(ports)) == 5

        base = f"http://127.0.0.1:{http_port}"
        async with aiohttp.ClientSession() as http:

            def as_user(user: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {tokens[user]}"}

            async with http.get(f"{base}/ready") as reply:
                assert reply.status == 200
            # A front end on its own dev server may call the dev node.
            page = {"Origin": "http://localhost:5173"}
            async with http.get(f"{base}/health", headers=page) as reply:
                assert reply.headers["Access-Control-Allow-Origin"] == "*"
            async with http.post(
                f"{base}/api/games",
                json={"white": "alice", "black": "bob"},
                headers=as_user("alice"),
            ) as reply:
                assert reply.status == 201
                game_id = (await reply.json())["id"]
            for ply, (user, uci) in enumerate(FOOLS_MATE):
                async with http.post(
                    f"{base}/api/games/{game_id}/moves",
                    json={"uci": uci, "ply": ply},
                    headers=as_user(user),
                ) as reply:
                    assert reply.status == 200, await reply.text()
            async with http.get(
                f"{base}/admin/cluster", headers=as_user("admin")
            ) as reply:
                assert reply.status == 200
            async with http.get(
                f"{base}/api/games/{game_id}", headers=as_user("bob")
            ) as reply:
                game = await reply.json()
        assert (game["status"], game["winner"], game["ply"]) == ("mate", "black", 4)

        process.send_signal(signal.SIGINT)
        await eventually(lambda: process.poll() is not None, timeout=60)
        assert process.returncode == 0, log_path.read_text()
        assert [port for port in ports if answers(port)] == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
