"""
Persistence: PostgreSQL journal and outbox, Kafka relay, Redis directory and cache.

Import from here. What each piece is for:

* :func:`migrate` - bring a database to the latest schema (safe on every start)
* :func:`create_pool` - the asyncpg pool shared by reads and the writer
* :class:`GroupCommitter` - commits many games' writes per transaction
* :class:`PostgresJournal` - the game actors' :class:`Journal` on PostgreSQL
* :class:`OutboxRelay` - publishes committed events to Kafka, in order per game
* :func:`persistence_children` - the writer and relay actors of a node
  (``/system/persistence/writer`` and ``/system/persistence/relay``)
* :class:`RedisDirectory` - node leases and atomic game claims
* :class:`BoardCache` - the Redis cache of boards for ``GET /board``
* :func:`outbox_backlog` - how many events wait for Kafka (a gauge)
"""

from livegame.persistence.cache import BoardCache
from livegame.persistence.committer import (
    CommitterStatistics,
    GroupCommitConfig,
    GroupCommitter,
)
from livegame.persistence.directory import NodeInfo, RedisDirectory
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.kafka import DEFAULT_TOPIC, EventProducer, KafkaConfig
from livegame.persistence.migrate import migrate
from livegame.persistence.outbox import outbox_backlog, prune_published
from livegame.persistence.pool import create_pool
from livegame.persistence.relay import OutboxRelay, RelayConfig, RelayStatistics
from livegame.persistence.requests import (
    AppendEvents,
    CommitListener,
    CommittedBatch,
    CreateGame,
    PendingWrite,
    WriteSink,
)
from livegame.persistence.state import BoardState
from livegame.persistence.writer import (
    Persistence,
    RelayActor,
    WriterActor,
    WriterSink,
    persistence_children,
)

__all__ = [
    "DEFAULT_TOPIC",
    "AppendEvents",
    "BoardCache",
    "BoardState",
    "CommitListener",
    "CommittedBatch",
    "CommitterStatistics",
    "CreateGame",
    "EventProducer",
    "GroupCommitConfig",
    "GroupCommitter",
    "KafkaConfig",
    "NodeInfo",
    "OutboxRelay",
    "PendingWrite",
    "Persistence",
    "PostgresJournal",
    "RedisDirectory",
    "RelayActor",
    "RelayConfig",
    "RelayStatistics",
    "WriteSink",
    "WriterActor",
    "WriterSink",
    "create_pool",
    "migrate",
    "outbox_backlog",
    "persistence_children",
    "prune_published",
]
