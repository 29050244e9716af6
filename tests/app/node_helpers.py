"""
Helpers of the end-to-end tests: clients of a running node, and its events.

* :func:`eventually` - wait for a condition, failing the test at a deadline
* :class:`Api` - an HTTP client of one node, with a token per user
* :class:`Watcher` - a WebSocket client that keeps every frame it receives
* :class:`KafkaEvents` - reads a topic from its start and keeps every event
* :class:`NodeProcess` - a node run as ``python -m livegame.app.cli serve``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
from aiokafka import AIOKafkaConsumer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from livegame.app.config import Settings
from livegame.transport.auth import mint_token

# At least 32 bytes, as HS256 wants.
AUTH_SECRET = "end-to-end-tests-secret-of-more-than-32-bytes"

# A short game: white mates on the seventh ply.
SCHOLARS_MATE = ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6", "h5f7"]
# Knights out and back: quiet moves for fifteen plies; the sixteenth repeats
# the start position a fifth time, which ends the game in a draw.
KNIGHT_DANCE = ["g1f3", "g8f6", "f3g1", "f6g8"]

Json = dict[str, Any]
Predicate = Callable[[], Awaitable[bool] | bool]


async def eventually(condition: Predicate, timeout: float = 15.0) -> None:
    """Return once ``condition()`` holds; fail at ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            while True:
                outcome = condition()
                if not isinstance(outcome, bool):
                    outcome = await outcome
                if outcome:
                    return
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout:g}s") from None


def token(user: str, *roles: str) -> str:
    return mint_token(AUTH_SECRET, user, roles=roles, ttl_seconds=3600)


def dance(ply: int) -> str:
    """The knight move to play after ``ply`` plies of a quiet game."""
    return KNIGHT_DANCE[ply % len(KNIGHT_DANCE)]


def mover(ply: int) -> str:
    """The player to move after ``ply`` plies, in games of alice and bob."""
    return "alice" if ply % 2 == 0 else "bob"


def http_base(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.http_port}"


def ws_url(settings: Settings) -> str:
    return f"ws://127.0.0.1:{settings.ws_port}/ws"


class Reply:
    """An HTTP answer: its status, headers and JSON body."""

    def __init__(self, status: int, headers: Mapping[str, str], body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.body!r}>"

    @property
    def code(self) -> str | None:
        """The contract's error code, if this is an error."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"]["code"])
        return None


class Api:
    """An HTTP client of one node; requests carry the token of ``user``."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    def __repr__(self) -> str:
        return f"<Api {self.base}>"

    async def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {token(user)}"
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base + path, data=data, headers=sent
        ) as response:
            raw = await response.read()
            try:
                parsed = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                parsed = raw.decode(errors="replace")
            return Reply(response.status, response.headers, parsed)

    async def create_game(
        self, white: str = "alice", black: str = "bob", clock: Json | None = None
    ) -> str:
        body: Json = {"white": white, "black": black}
        if clock is not None:
            body["clock"] = clock
        reply = await self.request("POST", "/api/games", user=white, body=body)
        assert reply.status == 201, reply

        return str(reply.body["id"])

    async def game(self, game_id: str, user: str = "alice") -> Json:
        reply = await self.request("GET", f"/api/games/{game_id}", user=user)
        assert reply.status == 200, reply

        return dict(reply.body)

    async def move(self, game_id: str, user: str, uci: str, ply: int) -> Reply:
        body = {"uci": uci, "ply": ply}
        return await self.request(
            "POST", f"/api/games/{game_id}/moves", user=user, body=body
        )

    async def play(
        self,
        game_id: str,
        moves: Iterable[str],
        first_ply: int = 0,
        players: tuple[str, str] = ("alice", "bob"),
    ) -> int:
        """Play ``moves`` in turn from ``first_ply``; return the ply reached."""
        ply = first_ply
        for uci in moves:
            reply = await self.move(game_id, players[ply % 2], uci, ply)
            assert reply.status == 200, reply
            ply += 1
            assert reply.body["ply"] == ply

        return ply

    async def is_ready(self) -> bool:
        try:
            reply = await self.request("GET", "/ready")
        except aiohttp.ClientError:
            return False

        return reply.status == 200


@asynccontextmanager
async def api_client(base: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, base)


class WatcherClosed(Exception):
    """The server closed the connection before the awaited frame came."""


class Watcher:
    """
    A WebSocket client that keeps every frame it receives, in order.

    Frames are read by a task of its own, so a test sends while the server
    pushes, then waits until the frames it expects have come.
    """

    def __init__(self, socket: ClientConnection, user: str) -> None:
        self.socket = socket
        self.user = user
        self.frames: list[Json] = []
        # The close code once the server has closed the connection.
        self.close_code: int | None = None
        self._changed = anyio.Event()
        self._rid = 0

    def __repr__(self) -> str:
        return f"<Watcher {self.user} frames={len(self.frames)}>"

    async def read_all(self) -> None:
        try:
            async for raw in self.socket:
                self.frames.append(orjson.loads(raw))
                self._poke()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.socket.close_code
            self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def next_rid(self) -> str:
        self._rid += 1
        return f"{self.user}-{self._rid}"

    async def send(self, frame: Json) -> None:
        await self.socket.send(orjson.dumps(frame).decode())

    async def request(self, frame: Json, timeout: float = 10.0) -> Json:
        """Send ``frame`` with a fresh rid; return the reply carrying it."""
        rid = self.next_rid()
        await self.send({**frame, "rid": rid})

        return await self.wait_for(lambda f: f.get("rid") == rid, timeout)

    async def send_raw(self, raw: str | bytes, timeout: float = 10.0) -> Json:
        """Send a frame as is; return the next error frame."""
        seen = len(self.frames)
        await self.socket.send(raw)

        return await self.wait_for(lambda f: f["type"] == "error", timeout, seen)

    async def subscribe(self, game_id: str, since: int | None = None) -> Json:
        frame: Json = {"type": "subscribe", "game": game_id}
        if since is not None:
            frame["since"] = since
        reply = await self.request(frame)
        assert reply["type"] == "state", reply

        return reply

    async def move(self, game_id: str, uci: str, ply: int) -> Json:
        return await self.request(
            {"type": "move", "game": game_id, "uci": uci, "ply": ply}
        )

    async def wait_for(
        self, predicate: Callable[[Json], bool], timeout: float = 10.0, seen: int = 0
    ) -> Json:
        """Return the first frame from index ``seen`` on matching ``predicate``."""
        with anyio.fail_after(timeout):
            while True:
                for frame in self.frames[seen:]:
                    if predicate(frame):
                        return frame
                seen = len(self.frames)
                if self.close_code is not None:
                    raise WatcherClosed(f"{self} closed ({self.close_code})")
                await self._changed.wait()

    async def wait_closed(self, timeout: float = 10.0) -> int:
        with anyio.fail_after(timeout):
            while self.close_code is None:
                await self._changed.wait()

        return self.close_code

    def moves(self, game_id: str) -> list[Json]:
        return [f for f in self.frames if f["type"] == "move" and f["game"] == game_id]

    def pushed(self, game_id: str) -> list[tuple[str, int]]:
        """The (type, ply) of every move and end frame of a game, in order."""
        return [
            (f["type"], f["ply"])
            for f in self.frames
            if f["type"] in {"move", "end"} and f.get("game") == game_id
        ]


@asynccontextmanager
async def watching(
    ws_url: str, user: str, *, bearer: str | None = None, **connect_options: Any
) -> AsyncIterator[Watcher]:
    """
    Connect as ``user``; read frames in the background until the exit.

    The token is one of ours for ``user``, or ``bearer`` where given.
    """
    url = f"{ws_url}?token={bearer or token(user)}"
    async with connect(url, open_timeout=10, **connect_options) as socket:
        watcher = Watcher(socket, user)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watcher.read_all)
            try:
                yield watcher
            finally:
                await socket.close()


class KafkaEvents:
    """Every event of a topic, read from its start, kept in arrival order."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.events: list[Json] = []

    def __repr__(self) -> str:
        return f"<KafkaEvents {len(self.events)}>"

    async def read_all(self) -> None:
        async for record in self._consumer:
            value = orjson.loads(record.value)
            assert record.key.decode() == value["game_id"]
            self.events.append(value)

    def of(self, game_id: str) -> list[Json]:
        """The game's events in arrival order, duplicates dropped by event_id."""
        seen: set[str] = set()
        events = []
        for event in self.events:
            if event["game_id"] == game_id and event["event_id"] not in seen:
                seen.add(event["event_id"])
                events.append(event)

        return events

    def moves(self, game_id: str) -> list[Json]:
        return [e for e in self.of(game_id) if e["type"] == "move_played"]

    async def wait_for_end(self, game_id: str, timeout: float = 20.0) -> list[Json]:
        """Wait until the game's end arrived; return all its events."""
        await eventually(
            lambda: any(e["type"] == "game_ended" for e in self.of(game_id)), timeout
        )

        return self.of(game_id)

    async def wait_for_plies(
        self, game_id: str, plies: int, timeout: float = 20.0, since: int = 1
    ) -> list[Json]:
        """Wait until moves ``since``..``plies`` arrived; return the game's moves."""
        wanted = set(range(since, plies + 1))
        await eventually(
            lambda: wanted <= {e["ply"] for e in self.moves(game_id)}, timeout
        )

        return self.moves(game_id)


@asynccontextmanager
async def kafka_events(bootstrap: str, topic: str) -> AsyncIterator[KafkaEvents]:
    """Read ``topic`` from its start in the background until the exit."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    try:
        events = KafkaEvents(consumer)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(events.read_all)
            yield events
            tasks.cancel_scope.cancel()
    finally:
        await consumer.stop()


def node_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a node subprocess: ours, with ``settings`` on top."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_SETTINGS}
    env.update(settings)
    env.setdefault("PYTHONUNBUFFERED", "1")

    return env


# Settings a developer may have exported, which must not leak into a test node.
_INHERITED_SETTINGS = frozenset(
    {"DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "KAFKA_BOOTSTRAP_SERVERS"}
)


class NodeProcess:
    """A node run as a child process, configured by its environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.http = f"http://127.0.0.1:{env['HTTP_PORT']}"
        self.ws = f"ws://127.0.0.1:{env['WS_PORT']}/ws"
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"<NodeProcess {self.env['NODE_ID']} {state}>"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "livegame.app.cli", "serve"],
                env=node_environment(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, api: Api, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            if not self.running:
                raise AssertionError(f"{self} died; see {self.log_path}")
            return await api.is_ready()

        await eventually(ready, timeout)

    def signal(self, signum: signal.Signals) -> None:
        assert self._process is not None
        self._process.send_signal(signum)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        await eventually(lambda: not self.running, timeout)
        code = self.returncode
        assert code is not None

        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would; wait for the process to be gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
