"""
Game events across nodes, through Redis pub/sub.

The node that serves a game publishes its events on the game's channel while
some node listens; a node whose clients watch a game served elsewhere
subscribes to that channel and hands each event to its local watchers.
Publishing is batched: events queue up and one task sends them in a
pipeline, so a busy node pays one round trip per batch, not per event.
Pub/sub delivers at most once; watchers notice a missing ply and resume from
the last one they saw, which the game actor can always replay.

Channel: ``<prefix>events:<game>``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from livegame.actors.game.events import GameEvent
from livegame.errors import StorageError
from livegame.persistence._translate import redis_errors

log = structlog.get_logger("livegame.persistence.fanout")

# Encodes an event for the wire, and decodes it back.
Encode = Callable[[GameEvent], bytes]
Decode = Callable[[bytes], GameEvent]


class Publisher:
    """
    The watcher a game actor feeds when other nodes watch its game.

    It never blocks the game: ``deliver`` only queues. When a batch reaches
    no listener on the game's channel, ``on_unheard(game_id)`` is called so
    the node can stop feeding it.
    """

    __slots__ = ("_fanout", "game_id")

    def __init__(self, fanout: EventFanout, game_id: str) -> None:
        self._fanout = fanout
        self.game_id = game_id

    def __repr__(self) -> str:
        return f"<Publisher {self.game_id}>"

    def deliver(self, event: GameEvent) -> None:
        self._fanout.queue(self.game_id, event)


class EventFanout:
    """
    Both directions of the pub/sub fan-out of one node.

    Args:
        client: the node's Redis client (publishing).
        prefix: of every channel.
        encode, decode: the events' wire form.
        on_unheard: told when a game's events reached nobody.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        encode: Encode,
        decode: Decode,
        on_unheard: Callable[[str], None] = lambda game_id: None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._encode = encode
        self._decode = decode
        self._on_unheard = on_unheard
        self._publishers: dict[str, Publisher] = {}
        self._outgoing: list[tuple[str, bytes]] = []
        self._sending: asyncio.Task[None] | None = None
        # Local watchers of games served elsewhere, by game.
        self._watchers: dict[str, set[Any]] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<EventFanout publishing={len(self._publishers)} "
            f"watching={len(self._watchers)}>"
        )

    def channel(self, game_id: str) -> str:
        return f"{self._prefix}events:{game_id}"

    # Publishing.

    def publisher(self, game_id: str) -> Publisher:
        """Return the one publisher of a game (the same object every time)."""
        publisher = self._publishers.get(game_id)
        if publisher is None:
            publisher = self._publishers[game_id] = Publisher(self, game_id)
        return publisher

    def forget_publisher(self, game_id: str) -> Publisher | None:
        return self._publishers.pop(game_id, None)

    def queue(self, game_id: str, event: GameEvent) -> None:
        self._outgoing.append((game_id, self._encode(event)))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._outgoing:
            batch, self._outgoing = self._outgoing, []
            try:
                with redis_errors("publish", events=len(batch)):
                    async with self._client.pipeline(transaction=False) as pipe:
                        for game_id, payload in batch:
                            pipe.publish(self.channel(game_id), payload)
                        heard = await pipe.execute()
            except StorageError as error:
                log.warning(
                    "fanout_publish_failed", events=len(batch), error=str(error)
                )
                continue
            unheard = {gid for (gid, _), n in zip(batch, heard, strict=True) if not n}
            for game_id in unheard:
                self._on_unheard(game_id)

    async def drain(self) -> None:
        task = self._sending
        if task is not None:
            await asyncio.shield(task)

    # Watching.

    def watching(self, game_id: str) -> bool:
        return bool(self._watchers.get(game_id))

    def watched_games(self) -> list[str]:
        return [game_id for game_id, subs in self._watchers.items() if subs]

    async def watch(self, game_id: str, subscriber: Any) -> bool:
        """Follow a game's channel for ``subscriber``; True if newly subscribed."""
        subscribers = self._watchers.setdefault(game_id, set())
        first = not subscribers
        subscribers.add(subscriber)
        if first:
            try:
                pubsub = await self._open()
                with redis_errors("subscribe", game_id=game_id):
                    await pubsub.subscribe(self.channel(game_id))
            except StorageError:
                subscribers.discard(subscriber)
                raise
        return first

    async def unwatch(self, game_id: str, subscriber: Any) -> None:
        subscribers = self._watchers.get(game_id)
        if not subscribers or subscriber not in subscribers:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._watchers[game_id]
            if self._pubsub is not None:
                with contextlib.suppress(StorageError), redis_errors("unsubscribe"):
                    await self._pubsub.unsubscribe(self.channel(game_id))

    async def _open(self) -> Any:
        if self._pubsub is None:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            with redis_errors("subscribe"):
                # A channel of our own, so the connection listens at once.
                await self._pubsub.subscribe(f"{self._prefix}events:-")
            self._reader = asyncio.get_running_loop().create_task(self._read())
        return self._pubsub

    async def _read(self) -> None:
        prefix = len(self.channel(""))
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception as error:  # Redis went away: resubscribe when back
                log.warning("fanout_listen_failed", error=repr(error))
                await asyncio.sleep(1.0)
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            game_id = (channel.decode() if isinstance(channel, bytes) else channel)[
                prefix:
            ]
            try:
                event = self._decode(message["data"])
            except Exception as error:  # a malformed message hurts nobody else
                log.warning("fanout_bad_message", game_id=game_id, error=repr(error))
                continue
            for subscriber in list(self._watchers.get(game_id, ())):
                subscriber.deliver(event)

    async def _resubscribe(self) -> None:
        channels = [self.channel(g) for g in self.watched_games()]
        with contextlib.suppress(Exception):
            await self._pubsub.subscribe(f"{self._prefix}events:-", *channels)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        await self.drain()
