"""
``livegame bench``: a load generator for a running node.

Many games at once; each game's two players have a WebSocket of their own
and play a real game record move by move, either as fast as acks return or
at a fixed total rate. It measures, per move, the time until the mover's
``ack`` (the move is durable by then) and the time until the opponent's
socket shows the move, plus game creations over HTTP. Without ``--http`` it
starts a node of its own (``livegame serve`` in a child process, with
services from the environment or embedded ones), so that the server and the
load generator are separate processes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets

from livegame.app.embedded import free_port
from livegame.app.records import game_records
from livegame.app.stats import summary_ms
from livegame.transport.auth import mint_token

# Seconds a player waits for a reply, or to see the opponent's move.
REPLY_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", help="base URL of a running node's HTTP API")
    parser.add_argument("--ws", help="its WebSocket URL, e.g. ws://127.0.0.1:8081/ws")
    parser.add_argument("--secret", help="its AUTH_SECRET (default: AUTH_SECRET)")
    parser.add_argument("--games", type=int, default=400, help="games at once")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="moves/s offered in all; 0: as fast as acks",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not counted")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of a node started here (repeatable)",
    )


@dataclass(slots=True)
class Figures:
    """What the run measured; samples are seconds."""

    measuring: bool = False
    moves: int = 0
    creations: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ack: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    create: list[float] = field(default_factory=list)
    # CPU seconds the node's process used while measuring, if known.
    server_cpu: float | None = None

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class Pacer:
    """Spaces out sends so that all games together offer ``rate`` moves/s."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.perf_counter()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.perf_counter()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Player:
    """One player's socket: sends moves, hands frames to whoever waits."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        # Futures waiting for an ack by rid, and for a move frame by ply.
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.moves: dict[int, asyncio.Future[float]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            await self._dispatch()
        finally:
            # A socket the server closed fails every waiter at once, with
            # the close code, instead of leaving them to time out.
            closed = ConnectionError(f"socket closed: {self.socket.close_code}")
            waiters: list[asyncio.Future[Any]] = [
                *self.acks.values(),
                *self.moves.values(),
            ]
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(closed)

    async def _dispatch(self) -> None:
        async for raw in self.socket:
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind in {"ack", "error", "state"}:
                waiter = self.acks.pop(frame.get("rid") or "", None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
            elif kind == "move":
                waiter_seen = self.moves.pop(frame["ply"], None)
                if waiter_seen is not None and not waiter_seen.done():
                    waiter_seen.set_result(time.perf_counter())

    def expect_move(self, ply: int) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        self.moves[ply] = future
        return future

    async def send(self, frame: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        self.acks[frame["rid"]] = future
        await self.socket.send(orjson.dumps(frame).decode())
        return future

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send ``frame``; return its ack or error, or raise TimeoutError."""
        return await asyncio.wait_for(await self.send(frame), REPLY_TIMEOUT)

    async def close(self) -> None:
        self.reader.cancel()
        await self.socket.close()


class Load:
    def __init__(
        self,
        args: argparse.Namespace,
        http: str,
        ws: str,
        secret: str,
        *,
        server_pid: int | None = None,
    ) -> None:
        self.args = args
        # The node's process, when it runs on this machine: its CPU time
        # over the measured window is part of the report.
        self.server_pid = server_pid
        self.http = http.rstrip("/")
        self.ws = ws
        self.secret = secret
        self.figures = Figures()
        self.pacer = Pacer(args.rate)
        self.deadline = 0.0
        self.serial = itertools.count()
        self.connecting = asyncio.Semaphore(32)

    def token(self, user: str) -> str:
        return mint_token(self.secret, user)

    async def run(self) -> Figures:
        start = time.perf_counter()
        self.deadline = start + self.args.warmup + self.args.duration
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = [
                asyncio.ensure_future(self.seat(session, seat))
                for seat in range(self.args.games)
            ]
            await asyncio.sleep(self.args.warmup)
            self.figures.measuring = True
            measured_from = time.perf_counter()
            cpu_from = process_cpu_seconds(self.server_pid)
            await asyncio.sleep(max(0.0, self.deadline - time.perf_counter()))
            cpu_to = process_cpu_seconds(self.server_pid)
            if cpu_from is not None and cpu_to is not None:
                self.figures.server_cpu = cpu_to - cpu_from
            await asyncio.gather(*tasks)
            # Moves count when acked before the deadline, whenever the last
            # seat notices it.
            self.measured = min(time.perf_counter(), self.deadline) - measured_from

        return self.figures

    async def seat(self, session: aiohttp.ClientSession, seat: int) -> None:
        """Play game after game at one seat until the deadline."""
        records = game_records()
        white, black = f"w{seat}", f"b{seat}"
        sockets = []
        for user in (white, black):
            # A few handshakes at a time: a thousand at once overflow the
            # server's listen backlog, which is not what is measured here.
            async with self.connecting:
                sockets.append(
                    await websockets.connect(
                        f"{self.ws}?token={self.token(user)}",
                        compression=None,
                        max_size=2**20,
                        open_timeout=60,
                    )
                )
        players = [Player(s) for s in sockets]
        try:
            while time.perf_counter() < self.deadline:
                record = records[next(self.serial) % len(records)]
                game_id = await self.create(session, white, black)
                if game_id is None:
                    continue
                await self.play(game_id, players, record)
                # A record may stop short of the end (a resignation, say), or
                # the deadline cut it: resign, as a player would, so that no
                # clock runs on in the node, and free the sockets' slots.
                resigned = await players[0].request(
                    {"type": "resign", "game": game_id, "rid": "r"}
                )
                refused = resigned.get("error", {}).get("code")
                if refused not in (None, "game_over"):
                    self.figures.error(refused)
                for player in players:
                    await player.request(
                        {"type": "unsubscribe", "game": game_id, "rid": "u"}
                    )
        except (ConnectionError, websockets.ConnectionClosed) as error:
            print(f"seat {seat}: {error}", file=sys.stderr)
            self.figures.error("socket_closed")
        except TimeoutError:
            print(f"seat {seat}: no reply within {REPLY_TIMEOUT:g} s", file=sys.stderr)
            self.figures.error("no_reply")
        finally:
            for player in players:
                await player.close()

    async def create(
        self, session: aiohttp.ClientSession, white: str, black: str
    ) -> str | None:
        body = {
            "white": white,
            "black": black,
            "clock": {"initial": 600, "increment": 5},
        }
        # The white player creates the game, as a player would; one service
        # token for every game would hit the per-user rate limit.
        headers = {"Authorization": f"Bearer {self.token(white)}"}
        t0 = time.perf_counter()
        async with session.post(
            f"{self.http}/api/games", json=body, headers=headers
        ) as r:
            document = await r.json()
        elapsed = time.perf_counter() - t0
        if r.status != 201:
            self.figures.error(document.get("error", {}).get("code", str(r.status)))
            return None
        if self.figures.measuring:
            self.figures.creations += 1
            self.figures.create.append(elapsed)

        return str(document["id"])

    async def play(
        self, game_id: str, players: list[Player], record: tuple[str, ...]
    ) -> None:
        for player in players:
            reply = await player.request(
                {"type": "subscribe", "game": game_id, "since": 0, "rid": "s"}
            )
            if reply.get("type") == "error":
                print(f"game {game_id}: subscribe refused: {reply}", file=sys.stderr)
                self.figures.error(reply["error"]["code"])
                return
        for ply, uci in enumerate(record):
            if time.perf_counter() >= self.deadline:
                return
            mover, watcher = players[ply % 2], players[1 - ply % 2]
            await self.pacer.wait()
            seen = watcher.expect_move(ply + 1)
            t0 = time.perf_counter()
            rid = f"m{ply}"
            reply = await mover.request(
                {"type": "move", "game": game_id, "uci": uci, "ply": ply, "rid": rid}
            )
            acked = time.perf_counter()
            if reply.get("type") == "error":
                self.figures.error(reply["error"]["code"])
                watcher.moves.pop(ply + 1, None)
                return
            try:
                seen_at = await asyncio.wait_for(seen, REPLY_TIMEOUT)
            except TimeoutError:
                print(f"game {game_id}: ply {ply + 1} unseen", file=sys.stderr)
                self.figures.error("move_unseen")
                return
            if self.figures.measuring and acked < self.deadline:
                self.figures.moves += 1
                self.figures.ack.append(acked - t0)
                self.figures.seen.append(seen_at - t0)


@contextmanager
def _own_node(args: argparse.Namespace) -> Iterator[tuple[str, str, str, int]]:
    """Run ``livegame serve`` in a child process, with services as for ``dev``."""
    from livegame.app.services import local_services

    folder = Path(tempfile.mkdtemp(prefix="livegame-bench-"))
    secret = secrets.token_urlsafe(24)
    http_port, ws_port = free_port(), free_port()
    with local_services(folder) as services:
        env = services.env
        env.update(
            AUTH_SECRET=secret,
            HOST="127.0.0.1",
            HTTP_PORT=str(http_port),
            WS_PORT=str(ws_port),
            NODE_ID="bench-1",
            REDIS_PREFIX=f"bench{secrets.token_hex(4)}:",
            LOG_LEVEL=env.get("LOG_LEVEL", "WARNING"),
        )
        for item in args.server_env:
            name, _, value = item.partition("=")
            env[name] = value
        log = (folder / "node.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "livegame.app.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(f"http://127.0.0.1:{http_port}", process, folder / "node.log")
            yield (
                f"http://127.0.0.1:{http_port}",
                f"ws://127.0.0.1:{ws_port}/ws",
                secret,
                process.pid,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def process_cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU seconds of process ``pid`` so far (Linux only)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold
    # spaces: utime and stime are the 14th and 15th fields of the line.
    fields = stat.rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")

    return (int(fields[11]) + int(fields[12])) / ticks


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the node at ``url`` answers /ready; exit if it dies or stalls."""
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the node exited; see {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the node was not ready within 60 s; see {log}")


def _report(load: Load, figures: Figures) -> None:
    seconds = getattr(load, "measured", load.args.duration)
    print(f"games at once     {load.args.games}")
    offered = f"{load.args.rate:,.0f}/s" if load.args.rate else "as fast as acks return"
    print(f"offered           {offered}")
    print(f"measured          {seconds:.1f} s after {load.args.warmup:.0f} s warm-up")
    print(
        f"moves             {figures.moves / seconds:,.0f} /s  ({figures.moves} moves)"
    )
    creations = figures.creations
    print(f"game creations    {creations / seconds:,.1f} /s  ({creations})")
    print(f"move ack          {summary_ms(figures.ack)}")
    print(f"opponent sees it  {summary_ms(figures.seen)}")
    print(f"game creation     {summary_ms(figures.create)}")
    print(f"errors            {figures.errors or 'none'}")
    if figures.server_cpu is not None:
        share = figures.server_cpu / seconds
        per_move = figures.server_cpu / figures.moves * 1e6 if figures.moves else 0
        print(
            f"node CPU          {share:.0%} of a core, {per_move:,.0f} µs per move"
            " (all its work, creations and publishing included)"
        )


def _run(load: Load) -> Figures:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(load.run())
    return uvloop.run(load.run())


def run_from_args(args: argparse.Namespace) -> int:
    if args.http:
        secret = args.secret or os.environ.get("AUTH_SECRET", "")
        if not secret or not args.ws:
            print("--http needs --ws and --secret (or AUTH_SECRET)", file=sys.stderr)
            return 2
        load = Load(args, args.http, args.ws, secret)
        _report(load, _run(load))
        return 0

    print("starting a node in a child process ...", flush=True)
    with _own_node(args) as (http, ws, secret, pid):
        load = Load(args, http, ws, secret, server_pid=pid)
        _report(load, _run(load))

    return 0
