"""
Measure group commit: appends per second and their latency.

``python -m livegame.persistence.bench DSN`` migrates the database, then
plays ``--games`` games at once, each appending ``--moves`` moves one after
the other (as a game actor does: the next move waits for the previous one's
commit), pausing ``--think-ms`` on average before each, and prints
throughput, latency percentiles, batch sizes and this process's CPU time per
write (the writer's and the simulated games'). Its games are deleted at the
end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time

import chess

from livegame.actors.game.events import GameCreated, MovePlayed
from livegame.persistence.committer import GroupCommitConfig, GroupCommitter
from livegame.persistence.journal import PostgresJournal
from livegame.persistence.migrate import migrate
from livegame.persistence.pool import create_pool


def _moves(count: int) -> list[tuple[str, str, str]]:
    """Return ``count`` legal (uci, san, fen) of a game that shuffles knights."""
    board = chess.Board()
    shuffle = ["g1f3", "g8f6", "f3g1", "f6g8"]
    played = []
    for ply in range(count):
        move = chess.Move.from_uci(shuffle[ply % 4])
        san = board.san(move)
        board.push(move)
        played.append((move.uci(), san, board.fen()))

    return played


async def _play(
    journal: PostgresJournal,
    moves: list[tuple[str, str, str]],
    latencies: list[float],
    think: float,
) -> str:
    game_id = f"bench-{secrets.token_hex(6)}"
    now = time.time_ns() // 1_000_000
    await journal.create(GameCreated(game_id, 1, "w", "b", 300_000, 0, now))
    for ply, (uci, san, fen) in enumerate(moves, start=1):
        if think:
            await asyncio.sleep(think * (0.5 + random.random()))
        event = MovePlayed(game_id, ply + 1, ply, uci, san, fen, 1, 1, now + ply)
        started = time.perf_counter()
        await journal.append(game_id, 1, [event])
        latencies.append(time.perf_counter() - started)

    return game_id


async def run(args: argparse.Namespace) -> None:
    await migrate(args.dsn)
    pool = await create_pool(args.dsn, min_size=4, max_size=args.concurrency + 4)
    config = GroupCommitConfig(
        max_batch=args.max_batch,
        window=args.window_ms / 1000,
        concurrency=args.concurrency,
    )
    committer = GroupCommitter(pool, config)
    await committer.start()
    journal = PostgresJournal(pool, committer)
    latencies: list[float] = []
    moves = _moves(args.moves)
    try:
        started = time.perf_counter()
        cpu_started = time.process_time()
        games = await asyncio.gather(
            *(
                _play(journal, moves, latencies, args.think_ms / 1000)
                for _ in range(args.games)
            )
        )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        stats = committer.statistics()
    finally:
        await committer.stop()

    await pool.execute("DELETE FROM outbox WHERE game_id = ANY($1::text[])", games)
    await pool.execute("DELETE FROM games WHERE id = ANY($1::text[])", games)
    await pool.close()
    _report(args, elapsed, cpu, latencies, stats.batches, stats.largest_batch_size)


def _report(
    args: argparse.Namespace,
    elapsed: float,
    cpu: float,
    latencies: list[float],
    batches: int,
    largest: int,
) -> None:
    writes = args.games * (args.moves + 1)
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{args.games} games x {args.moves} moves, max_batch={args.max_batch}"
        f" window={args.window_ms}ms concurrency={args.concurrency}"
        f" think={args.think_ms}ms\n"
        f"  appends/s   {len(latencies) / elapsed:,.0f}"
        f" (all writes/s {writes / elapsed:,.0f}, {elapsed:.2f}s)\n"
        f"  latency ms  p50 {cuts[49] * 1000:.1f}  p95 {cuts[94] * 1000:.1f}"
        f"  p99 {cuts[98] * 1000:.1f}\n"
        f"  batches     {batches}, mean size {writes / max(batches, 1):.1f},"
        f" largest {largest}\n"
        f"  cpu         {cpu / writes * 1e6:.0f} us per write in this process"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dsn")
    parser.add_argument("--games", type=int, default=500)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=2)
    # Each game waits this long on average between moves; 0 plays flat out.
    parser.add_argument("--think-ms", type=float, default=0.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
