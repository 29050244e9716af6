"""The PostgreSQL journal keeps the Journal contract of the in-memory one."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from persistence_helpers import START_MS, GameScript

from livegame.actors.game.events import GameCreated, GameEvent
from livegame.actors.game.journal import InMemoryJournal, Journal
from livegame.errors import Conflict, Fenced, GameNotFound, GameOver
from livegame.persistence.journal import PostgresJournal

pytestmark = pytest.mark.anyio


def a_short_game(game: GameScript) -> list[list[GameEvent]]:
    """The changes of a game: moves, a declined offer, a mate."""
    return [
        [game.move("f2f3")],
        [game.move("e7e5")],
        [game.offer_draw("white")],
        [game.decline_draw("black")],
        [game.move("g2g4")],
        [game.offer_draw("black")],
        [game.move("d8h4"), game.end("mate", "black", "checkmate")],
    ]


async def play(journal: Journal, game: GameScript, changes: list[list[GameEvent]]):
    await journal.create(game.created())
    for events in changes:
        await journal.append(game.game_id, 1, events)


async def test_load_rebuilds_what_the_in_memory_journal_rebuilds(
    journal: PostgresJournal, game: GameScript
) -> None:
    changes = a_short_game(game)
    reference = InMemoryJournal()
    await play(reference, game, changes)
    await play(journal, game, changes)

    assert await journal.load(game.game_id) == await reference.load(game.game_id)


async def test_load_of_a_new_game_has_no_moves_and_its_created_seq(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())

    history = await journal.load(game.game_id)

    assert history is not None
    assert history.created == game.created()
    assert history.moves == ()
    assert history.ended is None
    assert history.last_seq == 1


async def test_a_pending_draw_offer_survives_a_reload(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await journal.append(game.game_id, 0, [game.move("e2e4"), game.offer_draw("white")])

    history = await journal.load(game.game_id)

    assert history is not None
    assert history.draw_offer == "white"
    assert history.last_seq == 3


async def test_a_game_without_clock_round_trips(journal: PostgresJournal) -> None:
    game = GameScript(initial_ms=None)
    await journal.create(game.created())
    await journal.append(game.game_id, 0, [game.move("d2d4")])

    history = await journal.load(game.game_id)

    assert history is not None
    assert history.created.initial_ms is None
    assert history.moves[0].white_ms is None


async def test_an_unknown_game_loads_as_none(journal: PostgresJournal) -> None:
    assert await journal.load("nope") is None


async def test_creating_a_game_twice_is_a_conflict(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())

    with pytest.raises(Conflict):
        await journal.create(game.created())


async def test_appending_to_an_unknown_game_raises_game_not_found(
    journal: PostgresJournal, game: GameScript
) -> None:
    with pytest.raises(GameNotFound):
        await journal.append(game.game_id, 0, [game.move("e2e4")])


async def test_a_taken_seq_is_a_conflict_and_changes_nothing(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    first = game.move("e2e4")
    await journal.append(game.game_id, 0, [first])

    with pytest.raises(Conflict):
        await journal.append(game.game_id, 0, [first])

    history = await journal.load(game.game_id)
    assert history is not None
    assert history.moves == (first,)


async def test_a_seq_gap_is_a_conflict(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    game.move("e2e4")  # seq 2, never journaled

    with pytest.raises(Conflict):
        await journal.append(game.game_id, 0, [game.move("e7e5")])


async def test_a_ply_that_does_not_follow_is_a_conflict(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    move = game.move("e2e4")

    with pytest.raises(Conflict, match="ply"):
        await journal.append(game.game_id, 0, [replace(move, ply=2)])


async def test_an_older_epoch_is_fenced_and_a_newer_one_takes_over(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await journal.append(game.game_id, 2, [game.move("e2e4")])

    reply = game.move("e7e5")
    with pytest.raises(Fenced):
        await journal.append(game.game_id, 1, [reply])
    await journal.append(game.game_id, 3, [reply])

    with pytest.raises(Fenced):
        await journal.append(game.game_id, 2, [game.move("g1f3")])


async def test_a_claim_fences_the_previous_owner(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await journal.append(game.game_id, 1, [game.move("e2e4")])

    await journal.claim(game.game_id, 2)

    with pytest.raises(Fenced):
        await journal.append(game.game_id, 1, [game.move("e7e5")])


async def test_a_stale_claim_is_fenced_and_says_the_owner_epoch(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await journal.claim(game.game_id, 5)

    with pytest.raises(Fenced) as refused:
        await journal.claim(game.game_id, 4)

    assert refused.value.context["owner_epoch"] == 5


async def test_claiming_an_unknown_game_raises_game_not_found(
    journal: PostgresJournal,
) -> None:
    with pytest.raises(GameNotFound):
        await journal.claim("nope", 1)


async def test_nothing_is_appended_after_the_end(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await journal.append(game.game_id, 0, [game.end("resign", "black", "resignation")])

    with pytest.raises(GameOver):
        await journal.append(game.game_id, 0, [game.move("e2e4")])


async def test_board_returns_the_state_after_the_last_event(
    journal: PostgresJournal, game: GameScript
) -> None:
    await journal.create(game.created())
    await play_moves(journal, game, ["e2e4", "c7c5"])

    state = await journal.board(game.game_id)

    assert state is not None
    assert (state.ply, state.seq, state.fen) == (2, 3, game.board.fen())
    assert state.turn == "white"
    assert state.status == "started"


async def play_moves(journal: Journal, game: GameScript, moves: list[str]) -> None:
    for uci in moves:
        await journal.append(game.game_id, 0, [game.move(uci)])


# Listing a player's games.


async def test_a_players_games_list_newest_first_in_pages(
    journal: PostgresJournal,
) -> None:
    me, rival = f"p-{secrets.token_hex(4)}", f"p-{secrets.token_hex(4)}"
    made = []
    for n in range(5):
        white, black = (me, rival) if n % 2 == 0 else (rival, me)
        created = GameCreated(f"{me}-{n}", 1, white, black, None, 0, START_MS + n)
        await journal.create(created)
        made.append(created.game_id)
    # A game of others, and one of ours that has ended.
    await journal.create(GameCreated(f"{rival}-x", 1, rival, "carol", None, 0, 0))
    ended = GameScript(f"{me}-ended")
    await journal.create(replace(ended.created(), white=me, at_ms=START_MS + 9))
    await journal.append(ended.game_id, 1, [ended.end("aborted", None, "aborted")])
    every = ["started", "mate", "aborted"]

    first = await journal.list_games(me, every, 3)
    second = await journal.list_games(me, every, 3, before=first[-1].id)
    started = await journal.list_games(me, ["started"], 10)

    newest_first = [ended.game_id, *reversed(made)]
    assert [g.id for g in first + second] == newest_first
    assert [g.id for g in started] == list(reversed(made))
    assert all(me in (g.white, g.black) for g in first + second)
    assert first[0].status == "aborted"
    assert await journal.list_games(me, every, 3, before="no-such-game") == []
    assert await journal.list_games(f"p-{secrets.token_hex(4)}", every, 3) == []
