"""Helpers of the persistence tests: games scripted as the rules core would."""

from __future__ import annotations

import secrets

import chess

from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    MovePlayed,
    Status,
)

START_MS = 1_700_000_000_000


class GameScript:
    """Makes the events of one game, as the rules core would."""

    def __init__(self, game_id: str | None = None, initial_ms: int | None = 300_000):
        self.game_id = game_id or f"g-{secrets.token_hex(6)}"
        self.board = chess.Board()
        self.seq = 1
        self.at_ms = START_MS
        self.clock = initial_ms

    def created(self) -> GameCreated:
        return GameCreated(
            self.game_id,
            1,
            "alice",
            "bob",
            self.clock,
            2_000 if self.clock else 0,
            START_MS,
        )

    def _next(self) -> tuple[int, int]:
        self.seq += 1
        self.at_ms += 1_500
        return self.seq, self.at_ms

    def move(self, uci: str) -> MovePlayed:
        move = chess.Move.from_uci(uci)
        san = self.board.san(move)
        self.board.push(move)
        seq, at_ms = self._next()
        clocks = (self.clock, self.clock) if self.clock is not None else (None, None)
        return MovePlayed(
            self.game_id,
            seq,
            self.board.ply(),
            uci,
            san,
            self.board.fen(),
            clocks[0],
            clocks[1],
            at_ms,
        )

    def offer_draw(self, by: Color) -> DrawOffered:
        seq, at_ms = self._next()
        return DrawOffered(self.game_id, seq, self.board.ply(), by, at_ms)

    def decline_draw(self, by: Color) -> DrawDeclined:
        seq, at_ms = self._next()
        return DrawDeclined(self.game_id, seq, self.board.ply(), by, at_ms)

    def end(self, status: Status, winner: Color | None, reason: str) -> GameEnded:
        seq, at_ms = self._next()
        return GameEnded(
            self.game_id,
            seq,
            self.board.ply(),
            status,
            winner,
            reason,
            self.clock,
            self.clock,
            at_ms,
        )
