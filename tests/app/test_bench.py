"""``livegame bench``: the load generator against a real node."""

from __future__ import annotations

import argparse
import os
import sys
import time

import pytest
from node_helpers import AUTH_SECRET, http_base, ws_url

from livegame.app.config import Settings
from livegame.app.loadgen import Load, add_arguments, process_cpu_seconds
from livegame.app.node import open_node

pytestmark = pytest.mark.anyio


def bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("rate", [0, 40])
async def test_the_load_generator_plays_real_games_and_times_every_move(
    node_env, postgres, rate
):
    node_env.update(WS_RATE="1000", USER_RATE="1000")
    args = bench_args(
        "--games", "3", "--duration", "2", "--warmup", "0.5", "--rate", str(rate)
    )
    async with open_node(Settings.from_env(node_env)) as node:
        load = Load(args, http_base(node.settings), ws_url(node.settings), AUTH_SECRET)
        figures = await load.run()

    assert figures.errors == {}
    # Every game it started is over: none is left with a clock running.
    left_running = await postgres.fetchval(
        "SELECT count(*) FROM games WHERE white ~ '^w[0-9]+$' AND status = 'started'"
    )
    assert left_running == 0
    assert figures.moves > 0
    assert len(figures.ack) == len(figures.seen) == figures.moves
    assert min(figures.ack) > 0
    assert min(figures.seen) > 0
    if rate:
        # Paced: no more than offered, give or take a send in flight per game.
        assert figures.moves <= rate * load.measured + args.games


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_cpu_time_of_a_process_is_read_from_proc():
    before = process_cpu_seconds(os.getpid())
    spin_until = time.process_time() + 0.05
    while time.process_time() < spin_until:
        pass
    after = process_cpu_seconds(os.getpid())

    assert before is not None
    assert after is not None
    assert after - before >= 0.03
    assert process_cpu_seconds(None) is None
    assert process_cpu_seconds(2**22 + 12345) is None
