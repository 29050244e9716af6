"""
Forwarding commands to the node that serves a game.

A request may reach any node; when another live node serves the game, this
node forwards the command over HTTP (``POST /internal/games/{id}/ask``) with a
token of the ``node`` role and the current trace context, and returns the
reply or raises the refusal as if the game were local.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
import structlog

from livegame.errors import LiveGameError, Overloaded
from livegame.persistence.directory import RedisDirectory
from livegame.telemetry import metrics
from livegame.telemetry.tracing import inject, span
from livegame.transport.auth import NODE, mint_token
from livegame.transport.peer import decode_error, decode_reply, encode_message

log = structlog.get_logger("livegame.app.peers")

# Node tokens live an hour and are made anew after half of it.
_TOKEN_TTL = 3600


class PeerClient:
    """Asks other nodes; one connection pool for all of them."""

    def __init__(self, directory: RedisDirectory, secret: str, node_id: str) -> None:
        self._directory = directory
        self._secret = secret
        self._node_id = node_id
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._token_made = 0.0

    def __repr__(self) -> str:
        return f"<PeerClient {self._node_id}>"

    def _authorization(self) -> str:
        now = time.monotonic()
        if not self._token or now - self._token_made > _TOKEN_TTL / 2:
            self._token = mint_token(
                self._secret,
                f"node:{self._node_id}",
                roles=(NODE,),
                ttl_seconds=_TOKEN_TTL,
            )
            self._token_made = now
        return f"Bearer {self._token}"

    async def ask(
        self, node_id: str, game_id: str, message: Any, timeout: float
    ) -> Any:
        """
        Run ``message`` on ``node_id`` and return the game actor's reply.

        Raises:
            Overloaded: the node cannot be reached (it may be dying: its lease
                will expire and the game will move).
            LiveGameError: the refusal the node sent back.
        """
        node = await self._directory.node(node_id)
        if node is None:
            raise Overloaded(f"node {node_id} has no lease", node=node_id)

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            )
        headers = {
            "Authorization": self._authorization(),
            "Content-Type": "application/json",
        }
        body = orjson.dumps({"message": encode_message(message), "timeout": timeout})
        url = f"{node.http}/internal/games/{game_id}/ask"
        started = time.perf_counter()
        status: metrics.CallStatus = "error"
        try:
            with span("peer.forward", {"peer.node": node_id, "game.id": game_id}):
                inject(headers)
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout + 1.0),
                ) as response:
                    document = orjson.loads(await response.read())
            status = "ok"
        except TimeoutError as error:
            status = "timeout"
            raise Overloaded(f"node {node_id} did not answer", node=node_id) from error
        except (aiohttp.ClientError, OSError, orjson.JSONDecodeError) as error:
            raise Overloaded(f"node {node_id} is unreachable", node=node_id) from error
        finally:
            metrics.record_external_call(
                "peer_node", status, time.perf_counter() - started
            )

        if response.status == 200:
            return decode_reply(document)
        refusal: LiveGameError = decode_error(document, response.status)
        raise refusal

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
