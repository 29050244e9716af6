"""The HTTP API against a fake node: statuses, codes and what stays unchanged."""

from __future__ import annotations

from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from transport_fakes import SECRET, bearer, token_for

from livegame.transport import HttpConfig, RateLimit, build_app, mint_token

pytestmark = pytest.mark.anyio

ALICE = bearer("alice")
BOB = bearer("bob")
CAROL = bearer("carol")
PAIR = b'{"white": "alice", "black": "bob"'


async def error_of(response, status: int) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) >= {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]["code"]


# Creating games.


async def test_a_player_creates_a_game_and_gets_it_back_with_201(client):
    body = {"white": "alice", "black": "bob", "clock": {"initial": 300, "increment": 2}}
    response = await client.post("/api/games", json=body, headers=ALICE)

    assert response.status == 201
    game = await response.json()
    assert response.headers["Location"] == f"/api/games/{game['id']}"
    assert game["white"] == "alice"
    assert game["status"] == "started"
    assert game["ply"] == 0
    assert game["moves"] == []
    assert game["clock"] == {
        "white_ms": 300_000,
        "black_ms": 300_000,
        "increment_ms": 2000,
        "running": None,
    }
    assert datetime.fromisoformat(game["created_at"]).tzinfo is not None


async def test_a_game_without_a_clock_has_a_null_clock(client):
    body = {"white": "alice", "black": "bob"}
    response = await client.post("/api/games", json=body, headers=ALICE)

    assert response.status == 201
    assert (await response.json())["clock"] is None


async def test_a_user_cannot_create_a_game_they_do_not_play_in(client, games):
    body = {"white": "alice", "black": "bob"}
    response = await client.post("/api/games", json=body, headers=CAROL)

    assert await error_of(response, 403) == "not_a_player"
    assert games.games == {}


async def test_a_service_creates_games_for_others(client):
    body = {"white": "alice", "black": "bob"}
    headers = bearer("matchmaker", "service")
    response = await client.post("/api/games", json=body, headers=headers)

    assert response.status == 201


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b"", "malformed_json"),
        (b'{"white": "alice"}', "invalid_field"),
        (b'{"white": "alice", "black": 7}', "invalid_field"),
        (b'{"white": "alice", "black": "alice"}', "invalid_field"),
        (b'{"white": "alice", "black": "bob", "colour": "red"}', "invalid_field"),
        (b'{"white": "alice", "black": "bob", "clock": 300}', "invalid_field"),
        (PAIR + b', "clock": {"initial": 0, "increment": 0}}', "invalid_field"),
        (PAIR + b', "clock": {"initial": true, "increment": 0}}', "invalid_field"),
        (PAIR + b', "clock": {"initial": 60, "increment": -1}}', "invalid_field"),
        (PAIR + b', "clock": {"initial": 60}}', "invalid_field"),
        (
            PAIR + b', "clock": {"initial": 60, "increment": 0, "x": 1}}',
            "invalid_field",
        ),
        (PAIR + b', "clock": {"initial": 1e3, "increment": 0}}', "invalid_field"),
        (b'{"white": "", "black": "bob"}', "invalid_field"),
        (b'{"white": "al ice", "black": "bob"}', "invalid_field"),
    ],
)
async def test_a_malformed_game_body_is_refused_with_400(client, games, raw, code):
    headers = {**ALICE, "Content-Type": "application/json"}
    response = await client.post("/api/games", data=raw, headers=headers)

    assert await error_of(response, 400) == code
    assert games.games == {}


async def test_a_body_over_the_limit_is_refused_with_413(client, games):
    body = {"white": "alice", "black": "bob", "pad": "x" * 4096}
    response = await client.post("/api/games", json=body, headers=ALICE)

    assert await error_of(response, 413) == "payload_too_large"
    assert games.games == {}


# Authentication.


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {token_for('alice', ttl_seconds=1)}x"},
    ],
)
async def test_a_missing_or_bad_token_gets_401(client, games, headers):
    game = games.new_game()
    response = await client.get(f"/api/games/{game.id}", headers=headers)

    assert await error_of(response, 401) == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_expired_token_gets_401(client, games):
    expired = mint_token(SECRET, "alice", ttl_seconds=60, now=1_000_000)
    headers = {"Authorization": f"Bearer {expired}"}
    response = await client.get(f"/api/games/{games.new_game().id}", headers=headers)

    assert await error_of(response, 401) == "unauthorized"


# Reading games.


async def test_a_game_reads_back_with_the_contract_fields(client, games):
    game = games.new_game()
    response = await client.get(f"/api/games/{game.id}", headers=CAROL)

    assert response.status == 200
    body = await response.json()
    assert set(body) == {
        "id",
        "white",
        "black",
        "status",
        "winner",
        "reason",
        "fen",
        "ply",
        "turn",
        "moves",
        "clock",
        "draw_offer",
        "created_at",
        "updated_at",
    }
    assert body["created_at"].endswith("Z")


async def test_the_board_is_the_cheap_state_of_the_game(client, games):
    game = games.new_game()
    response = await client.get(f"/api/games/{game.id}/board", headers=CAROL)

    assert response.status == 200
    body = await response.json()
    assert body["ply"] == 0
    assert body["turn"] == "white"
    assert set(body) == {"id", "fen", "ply", "turn", "status", "winner", "clock"}


async def test_the_moves_list_has_ply_uci_san_and_clocks(client, games):
    game = games.new_game()
    await client.post(
        f"/api/games/{game.id}/moves", json={"uci": "e2e4", "ply": 0}, headers=ALICE
    )
    response = await client.get(f"/api/games/{game.id}/moves", headers=CAROL)

    body = await response.json()
    assert body["id"] == game.id
    [move] = body["moves"]
    assert (move["ply"], move["uci"], move["san"]) == (1, "e2e4", "e4")
    assert move["white_ms"] == 300_000
    assert move["at"].endswith("Z")


@pytest.mark.parametrize("suffix", ["", "/board", "/moves"])
@pytest.mark.parametrize("game_id", ["nope", "bad%20id", "x" * 65])
async def test_an_unknown_game_is_404(client, suffix, game_id):
    response = await client.get(f"/api/games/{game_id}{suffix}", headers=ALICE)

    assert await error_of(response, 404) == "game_not_found"


# Playing moves: each refusal leaves the game as it was.


async def test_the_side_to_move_plays_and_gets_the_result(client, games):
    game = games.new_game()
    body = {"uci": "e2e4", "ply": 0}
    response = await client.post(
        f"/api/games/{game.id}/moves", json=body, headers=ALICE
    )

    assert response.status == 200
    result = await response.json()
    assert result["ply"] == 1
    assert result["san"] == "e4"
    assert result["status"] == "started"
    assert result["clock"]["running"] == "black"
    assert len(games.games[game.id].moves) == 1


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        (ALICE, {"uci": "d2d4", "ply": 1}, 409, "not_your_turn"),
        (BOB, {"uci": "e7e5", "ply": 0}, 409, "stale_ply"),
        (BOB, {"uci": "e7e5", "ply": 2}, 409, "stale_ply"),
        (BOB, {"uci": "e8e6", "ply": 1}, 422, "illegal_move"),
        (BOB, {"uci": "zz", "ply": 1}, 422, "illegal_move"),
        (BOB, {"uci": "e7e5x", "ply": 1}, 422, "illegal_move"),
        (BOB, {"uci": 42, "ply": 1}, 400, "invalid_field"),
        (BOB, {"uci": "e7e5", "ply": "1"}, 400, "invalid_field"),
        (BOB, {"uci": "e7e5", "ply": -1}, 400, "invalid_field"),
        (BOB, {"uci": "e7e5", "ply": True}, 400, "invalid_field"),
        (BOB, {"uci": "e7e5"}, 400, "invalid_field"),
        (BOB, {"uci": "e7e5", "ply": 1, "promotion": "q"}, 400, "invalid_field"),
        (CAROL, {"uci": "e7e5", "ply": 1}, 403, "not_a_player"),
    ],
)
async def test_a_refused_move_changes_nothing(client, games, who, body, status, code):
    game = games.new_game()
    first = {"uci": "e2e4", "ply": 0}
    await client.post(f"/api/games/{game.id}/moves", json=first, headers=ALICE)
    before = games.games[game.id].view()

    response = await client.post(f"/api/games/{game.id}/moves", json=body, headers=who)

    assert await error_of(response, status) == code
    assert games.games[game.id].view() == before


async def test_black_cannot_move_first(client, games):
    game = games.new_game()
    body = {"uci": "e7e5", "ply": 0}
    response = await client.post(f"/api/games/{game.id}/moves", json=body, headers=BOB)

    assert await error_of(response, 409) == "not_your_turn"
    assert games.games[game.id].moves == []


async def test_a_move_after_the_end_is_game_over(client, games):
    game = games.new_game()
    await client.post(f"/api/games/{game.id}/resign", headers=BOB)
    before = games.games[game.id].view()

    body = {"uci": "e2e4", "ply": 0}
    response = await client.post(
        f"/api/games/{game.id}/moves", json=body, headers=ALICE
    )

    assert await error_of(response, 409) == "game_over"
    assert games.games[game.id].view() == before


async def test_a_move_in_an_unknown_game_is_404(client):
    body = {"uci": "e2e4", "ply": 0}
    response = await client.post("/api/games/g404/moves", json=body, headers=ALICE)

    assert await error_of(response, 404) == "game_not_found"


async def test_an_overloaded_node_answers_503_with_retry_after(client, games):
    game = games.new_game()
    games.overloaded = True
    body = {"uci": "e2e4", "ply": 0}
    response = await client.post(
        f"/api/games/{game.id}/moves", json=body, headers=ALICE
    )

    assert await error_of(response, 503) == "overloaded"
    assert int(response.headers["Retry-After"]) >= 1
    games.overloaded = False
    assert games.games[game.id].moves == []


async def test_fools_mate_ends_the_game_with_a_winner(client, games):
    game = games.new_game()
    moves = [("f2f3", ALICE), ("e7e5", BOB), ("g2g4", ALICE), ("d8h4", BOB)]
    for ply, (uci, who) in enumerate(moves):
        body = {"uci": uci, "ply": ply}
        response = await client.post(
            f"/api/games/{game.id}/moves", json=body, headers=who
        )

    result = await response.json()
    assert (result["status"], result["winner"], result["san"]) == (
        "mate",
        "black",
        "Qh4#",
    )


# Game actions.


async def test_resigning_ends_the_game_for_the_opponent(client, games):
    game = games.new_game()
    response = await client.post(f"/api/games/{game.id}/resign", headers=ALICE)

    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["winner"]) == ("resign", "black")


async def test_a_draw_offered_and_accepted_draws_the_game(client, games):
    game = games.new_game()
    offer = await client.post(f"/api/games/{game.id}/draw/offer", headers=ALICE)
    assert (await offer.json())["draw_offer"] == "white"

    response = await client.post(f"/api/games/{game.id}/draw/accept", headers=BOB)

    body = await response.json()
    assert (body["status"], body["winner"], body["reason"]) == (
        "draw",
        None,
        "agreement",
    )


async def test_a_declined_draw_offer_is_gone(client, games):
    game = games.new_game()
    await client.post(f"/api/games/{game.id}/draw/offer", headers=ALICE)
    response = await client.post(f"/api/games/{game.id}/draw/decline", headers=BOB)

    assert (await response.json())["draw_offer"] is None


async def test_aborting_a_fresh_game_aborts_it(client, games):
    game = games.new_game()
    response = await client.post(f"/api/games/{game.id}/abort", headers=BOB)

    assert (await response.json())["status"] == "aborted"


@pytest.mark.parametrize(
    ("suffix", "who", "status", "code"),
    [
        ("draw/accept", BOB, 409, "conflict"),
        ("draw/decline", BOB, 409, "conflict"),
        ("draw/claim", ALICE, 409, "conflict"),
        ("resign", CAROL, 403, "not_a_player"),
        ("draw/offer", CAROL, 403, "not_a_player"),
        ("abort", CAROL, 403, "not_a_player"),
    ],
)
async def test_a_refused_action_changes_nothing(
    client, games, suffix, who, status, code
):
    game = games.new_game()
    before = games.games[game.id].view()
    response = await client.post(f"/api/games/{game.id}/{suffix}", headers=who)

    assert await error_of(response, status) == code
    assert games.games[game.id].view() == before


async def test_an_action_after_the_end_is_game_over(client, games):
    game = games.new_game()
    await client.post(f"/api/games/{game.id}/abort", headers=ALICE)
    response = await client.post(f"/api/games/{game.id}/resign", headers=ALICE)

    assert await error_of(response, 409) == "game_over"


@pytest.mark.parametrize("raw", [b"{}", b"  ", b""])
async def test_an_action_takes_an_empty_body_or_an_empty_object(client, games, raw):
    game = games.new_game()
    response = await client.post(
        f"/api/games/{game.id}/resign", data=raw, headers=ALICE
    )

    assert response.status == 200


@pytest.mark.parametrize(
    ("raw", "code"), [(b'{"why": 1}', "invalid_field"), (b"{", "malformed_json")]
)
async def test_an_action_with_fields_is_refused(client, games, raw, code):
    game = games.new_game()
    response = await client.post(
        f"/api/games/{game.id}/resign", data=raw, headers=ALICE
    )

    assert await error_of(response, 400) == code
    assert games.games[game.id].status == "started"


async def test_an_action_in_an_unknown_game_is_404(client):
    response = await client.post("/api/games/g404/draw/offer", headers=ALICE)

    assert await error_of(response, 404) == "game_not_found"


# Rate limits.


async def test_a_user_over_their_rate_gets_429_and_others_do_not(games, verifier):
    config = HttpConfig(user_rate=RateLimit(0.01, 2))
    game = games.new_game()
    async with TestClient(TestServer(build_app(games, verifier, config))) as client:
        for _ in range(2):
            response = await client.get(f"/api/games/{game.id}", headers=ALICE)
            assert response.status == 200

        limited = await client.get(f"/api/games/{game.id}", headers=ALICE)
        other = await client.get(f"/api/games/{game.id}", headers=BOB)

        assert await error_of(limited, 429) == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        assert other.status == 200


# Listing games.


async def test_a_player_lists_their_own_games_by_default(client, games):
    mine = [games.new_game("alice", "bob").id, games.new_game("carol", "alice").id]
    games.new_game("bob", "carol")

    response = await client.get("/api/games", headers=ALICE)

    assert response.status == 200
    page = await response.json()
    assert [g["id"] for g in page["games"]] == list(reversed(mine))
    assert page["next"] is None
    first = page["games"][1]
    assert (first["white"], first["black"], first["status"]) == (
        "alice",
        "bob",
        "started",
    )
    assert (first["ply"], first["turn"]) == (0, "white")
    assert first["clock"]["increment_ms"] == 2000


async def test_pages_follow_next_until_there_is_none(client, games):
    made = [games.new_game("alice", "bob").id for _ in range(5)]

    seen, cursor = [], None
    while True:
        query = {"player": "alice", "limit": "2"}
        if cursor is not None:
            query["before"] = cursor
        response = await client.get("/api/games", params=query, headers=CAROL)
        page = await response.json()
        seen.extend(g["id"] for g in page["games"])
        cursor = page["next"]
        if cursor is None:
            break

    assert seen == list(reversed(made))


async def test_the_status_filter_keeps_started_or_ended_games(client, games):
    live = games.new_game("alice", "bob")
    over = games.new_game("alice", "bob")
    await client.post(f"/api/games/{over.id}/resign", headers=BOB)

    async def listed(status: str) -> list[str]:
        response = await client.get(f"/api/games?status={status}", headers=ALICE)
        return [g["id"] for g in (await response.json())["games"]]

    assert await listed("started") == [live.id]
    assert await listed("ended") == [over.id]
    assert await listed("resign") == [over.id]
    assert await listed("mate") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=-1",
        "status=finished",
        "player=" + "x" * 65,
        "before=../g1",
        "color=white",
        "limit=2&limit=3",
    ],
)
async def test_a_bad_list_query_is_refused_with_400(client, games, query):
    games.new_game("alice", "bob")

    response = await client.get(f"/api/games?{query}", headers=ALICE)

    assert await error_of(response, 400) == "invalid_field"


async def test_listing_needs_a_token(client):
    response = await client.get("/api/games")

    assert await error_of(response, 401) == "unauthorized"
