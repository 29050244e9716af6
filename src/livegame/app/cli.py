"""
The ``livegame`` command line.

``serve`` runs a node, ``dev`` runs a node with embedded services,
``migrate`` applies schema migrations, ``token`` mints a player token,
``config`` prints the configuration table, and ``bench`` measures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from livegame.app.node import serve

    return serve()


def _dev(args: argparse.Namespace) -> int:
    from livegame.app.dev import run_dev

    return run_dev(
        data_dir=args.data_dir, http_port=args.http_port, ws_port=args.ws_port
    )


def _migrate(args: argparse.Namespace) -> int:
    import anyio

    from livegame.app.config import Settings
    from livegame.persistence.migrate import migrate

    dsn = args.database_url or Settings.from_env().database_url
    applied = anyio.run(migrate, dsn)
    print(f"migrations applied: {list(applied) or 'none (up to date)'}")

    return 0


def _token(args: argparse.Namespace) -> int:
    from livegame.app.config import Settings
    from livegame.transport.auth import mint_token

    secret = args.secret or Settings.from_env().auth_secret
    if not secret:
        print("AUTH_SECRET is not set (or pass --secret)", file=sys.stderr)
        return 2
    roles = tuple(args.role or ())
    print(mint_token(secret, args.user, roles=roles, ttl_seconds=args.ttl))

    return 0


def _config(args: argparse.Namespace) -> int:
    from livegame.app.config import describe

    print(describe())

    return 0


def _bench_actors(args: argparse.Namespace) -> int:
    from livegame.app.bench_actors import run

    return run(seconds=args.seconds)


def _bench_load(args: argparse.Namespace) -> int:
    from livegame.app.loadgen import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livegame", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a node configured by environment")
    serve.set_defaults(func=_serve)

    dev = commands.add_parser(
        "dev", help="run a node with embedded PostgreSQL, Redis and Kafka"
    )
    dev.add_argument("--data-dir", default=".livegame", help="where services keep data")
    dev.add_argument("--http-port", type=int, default=8080)
    dev.add_argument("--ws-port", type=int, default=8081)
    dev.set_defaults(func=_dev)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--database-url", help="default: DATABASE_URL")
    migrate.set_defaults(func=_migrate)

    token = commands.add_parser("token", help="print a signed token for a user")
    token.add_argument("user")
    token.add_argument(
        "--role", action="append", choices=["admin", "service"], help="repeatable"
    )
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds")
    token.add_argument("--secret", help="default: AUTH_SECRET")
    token.set_defaults(func=_token)

    config = commands.add_parser("config", help="print the configuration variables")
    config.set_defaults(func=_config)

    bench = commands.add_parser("bench", help="measure; see `livegame bench -h`")
    bench.set_defaults(func=_bench_load)
    kinds = bench.add_subparsers(dest="kind")
    actors = kinds.add_parser("actors", help="the actor runtime on one core")
    actors.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    actors.set_defaults(func=_bench_actors)
    from livegame.app.loadgen import add_arguments

    add_arguments(bench)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
