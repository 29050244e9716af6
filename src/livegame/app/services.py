"""The backing services of a node: taken from the environment or started here."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from livegame.app.embedded import kafka_server, postgres_server, redis_server


@dataclass(slots=True)
class Services:
    # The environment a node should run with: the given one plus the URLs
    # of the services started here.
    env: dict[str, str]
    # Names of the services started here, which stop with the context.
    started: list[str] = field(default_factory=list)


@contextmanager
def local_services(
    folder: Path, env: Mapping[str, str] | None = None
) -> Iterator[Services]:
    """
    Start PostgreSQL, Redis and Kafka under ``folder`` unless ``env`` names them.

    ``DATABASE_URL``, ``REDIS_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` that are
    set are used as they are. Services started here stop on the way out.
    """
    given = dict(os.environ if env is None else env)
    services = Services(dict(given))
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if "DATABASE_URL" not in given:
            server = stack.enter_context(postgres_server(folder))
            services.env["DATABASE_URL"] = server.url
            services.started.append("PostgreSQL")
        if "REDIS_URL" not in given:
            server = stack.enter_context(redis_server(folder))
            services.env["REDIS_URL"] = server.url
            services.started.append("Redis")
        if "KAFKA_BOOTSTRAP_SERVERS" not in given:
            server = stack.enter_context(kafka_server(folder))
            services.env["KAFKA_BOOTSTRAP_SERVERS"] = server.url
            services.started.append("Kafka")
        yield services
