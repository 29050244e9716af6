"""
The rules of one live game: a pure core over a python-chess board.

:class:`GameState` decides and never waits, reads the time or does I/O. Each
command method takes the command's arguments plus ``now_ms`` and either raises
the :mod:`livegame.errors` error that refuses it, leaving the state untouched,
or returns the events the command produces, not yet applied. The caller makes
them durable, then hands each to :meth:`GameState.apply`: the only path that
changes a game. Replaying a journal takes the same path, so a rebuilt game
cannot drift from the live one.

Deciding a move means making it: :meth:`GameState.play` pushes the move to
see that it leaves its own king safe and to find its check, ending and FEN,
and leaves it on the board for the event it returns. :meth:`GameState.apply`
of that very event object then finishes the move without making it again;
any other read of the board or any other event first takes the move back, so
the state still looks untouched until the event is applied. Events from
elsewhere (a journal being replayed) always take the full path.

After every move the core looks for the endings that need no claim:
checkmate, stalemate, insufficient material, fivefold repetition and the
seventy-five-move rule. Threefold repetition and the fifty-move rule end a
game only when a player claims them; they are never tested per move.

Time runs on a :class:`~livegame.actors.game.clock.Clock`. Once a flag has
fallen every command is refused with :class:`~livegame.errors.GameOver`, and
:meth:`GameState.check_flag` gives the timeout ending for the caller to
journal; a flag falls when nobody moves as well, so callers check it on their
own timer too.
"""

from __future__ import annotations

from collections.abc import Iterable

import chess

from livegame.actors.game.clock import Clock, other
from livegame.actors.game.events import (
    Color,
    DrawDeclined,
    DrawOffered,
    GameCreated,
    GameEnded,
    GameEvent,
    MovePlayed,
    Status,
    color_to_move,
)
from livegame.actors.game.journal import GameHistory
from livegame.actors.game.messages import ClockView, GameView, MoveResult
from livegame.actors.game.notation import check_suffix, fen_of, plain_san
from livegame.actors.game.position import (
    AUTOMATIC_ENDINGS,
    Ending,
    claimable_draw,
    ending_after,
    is_pseudo_legal,
    left_in_check,
)
from livegame.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GameOver,
    IllegalMove,
    NotYourTurn,
    StalePly,
)

# Plies a game may reach and still be aborted: before both sides have moved.
_ABORTABLE_PLIES = 2

_BOARD_COLOR: dict[Color, chess.Color] = {"white": chess.WHITE, "black": chess.BLACK}

# Parsed moves by their UCI text. Only texts python-chess parses get in, and
# there are some 29,000 of those, so the cache stays bounded. Moves are never
# changed once made, so one object may serve every game.
_MOVES: dict[str, chess.Move] = {}


def _move_of(uci: str) -> chess.Move:
    """Return the move ``uci`` names; raise ValueError if it names none."""
    move = _MOVES.get(uci)
    if move is None:
        move = _MOVES[uci] = chess.Move.from_uci(uci)

    return move


def create_game(
    game_id: str,
    white: str,
    black: str,
    initial_ms: int | None,
    increment_ms: int,
    now_ms: int,
) -> GameCreated:
    """
    Return the event that creates a game, after checking its settings.

    Raises:
        BadRequest: an empty id or player, or a clock that cannot run.
    """
    if not (game_id and white and black):
        raise BadRequest("a game needs an id and two players", game_id=game_id)
    if initial_ms is None and increment_ms != 0:
        raise BadRequest("an increment needs a clock", game_id=game_id)
    if initial_ms is not None and (initial_ms <= 0 or increment_ms < 0):
        raise BadRequest("the clock needs time to run", game_id=game_id)

    return GameCreated(
        game_id=game_id,
        seq=1,
        white=white,
        black=black,
        initial_ms=initial_ms,
        increment_ms=increment_ms,
        at_ms=now_ms,
    )


class GameState:
    """One game's position, players, clock and outcome, changed only by events."""

    def __init__(self, created: GameCreated) -> None:
        self.game_id = created.game_id
        self.created = created
        self.white = created.white
        self.black = created.black
        # Read through the board property, which takes back a prepared move.
        self._board = chess.Board()
        # The move event play() returned last, with the clock after it, while
        # its move stays pushed on _board waiting for apply().
        self._prepared: tuple[MovePlayed, Clock | None] | None = None
        self.status: Status = "started"
        self.winner: Color | None = None
        self.reason: str | None = None
        # The seq of the last applied event.
        self.seq = created.seq
        # The side whose draw offer is pending.
        self.draw_offer: Color | None = None
        self.clock: Clock | None = None
        if created.initial_ms is not None:
            self.clock = Clock.new(created.initial_ms, created.increment_ms)
        self.moves: list[MovePlayed] = []
        self.ended: GameEnded | None = None
        # The position as the last move recorded it, so views need no FEN work.
        self.fen = chess.STARTING_FEN
        # When the position or the outcome last changed (offers do not count).
        self.updated_at_ms = created.at_ms

    @classmethod
    def from_history(cls, history: GameHistory) -> GameState:
        """Rebuild a game from its journaled history."""
        state = cls(history.created)
        for move in history.moves:
            state.apply(move)
        if history.draw_offer is not None:
            # The history keeps the pending offer, not its event; an offer
            # always follows the last move, so a stand-in with the last seq
            # restores it through the same path.
            state.apply(
                DrawOffered(
                    state.game_id,
                    history.last_seq,
                    state.ply,
                    history.draw_offer,
                    state.updated_at_ms,
                )
            )
        if history.ended is not None:
            state.apply(history.ended)
        # Declined offers leave seqs the history does not carry.
        state.seq = max(state.seq, history.last_seq)

        return state

    @classmethod
    def from_events(
        cls, created: GameCreated, events: Iterable[GameEvent]
    ) -> GameState:
        """Rebuild a game from its creation and every later event, in order."""
        state = cls(created)
        for event in events:
            state.apply(event)

        return state

    def __repr__(self) -> str:
        return f"<GameState {self.game_id} {self.status} ply={self.ply} seq={self.seq}>"

    @property
    def board(self) -> chess.Board:
        """Return the position the applied events reached."""
        if self._prepared is not None:
            self._take_back()

        return self._board

    @board.setter
    def board(self, board: chess.Board) -> None:
        self._prepared = None
        self._board = board

    @property
    def ply(self) -> int:
        """Return the number of moves played."""
        return len(self.moves)

    @property
    def turn(self) -> Color:
        """Return the side to move."""
        return "white" if self.board.turn == chess.WHITE else "black"

    @property
    def is_over(self) -> bool:
        """Return whether the game has ended."""
        return self.status != "started"

    def flag_deadline_ms(self) -> int | None:
        """Return when the running flag falls, or None if no clock runs."""
        if self.clock is None or self.is_over:
            return None

        return self.clock.deadline_ms()

    # Commands. Each returns unapplied events, or raises and changes nothing.

    def play(
        self, player: str, uci: str, ply: int, now_ms: int
    ) -> tuple[GameEvent, ...]:
        """
        Return the events of ``player`` playing ``uci`` having seen ``ply``.

        An exact retry of a played move (same player, ply and move) returns no
        events; :meth:`move_result` of ``ply + 1`` is then its original result.

        Raises:
            Forbidden: ``player`` does not play in this game.
            GameOver: the game has ended or the mover's flag has fallen.
            StalePly: ``ply`` is not the game's ply.
            NotYourTurn: the other side is to move.
            IllegalMove: ``uci`` is malformed or not legal here.
        """
        color = self._color_of(player)
        if self._is_retry(player, uci, ply):
            return ()

        self._require_live(now_ms)
        if ply != len(self.moves):
            raise StalePly(
                f"the game is at ply {self.ply}, not {ply}",
                game_id=self.game_id,
                ply=self.ply,
            )
        if color != self.turn:
            raise NotYourTurn(f"{self.turn} is to move", game_id=self.game_id)

        return self._move_events(color, uci, self._parse(uci), now_ms)

    def resign(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """Return the events of ``player`` resigning."""
        color = self._color_of(player)
        self._require_live(now_ms)

        return (self._end(("resign", other(color), "resignation"), now_ms),)

    def offer_draw(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """
        Return the events of ``player`` offering a draw.

        Repeating one's own pending offer changes nothing (no events); offering
        while the opponent's offer is pending accepts it.
        """
        color = self._color_of(player)
        self._require_live(now_ms)
        if self.draw_offer == color:
            return ()
        if self.draw_offer == other(color):
            return (self._end(("draw", None, "agreement"), now_ms),)

        return (DrawOffered(self.game_id, self.seq + 1, self.ply, color, now_ms),)

    def accept_draw(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """Return the events of ``player`` accepting the opponent's offer."""
        color = self._color_of(player)
        self._require_live(now_ms)
        self._require_offer_to(color)

        return (self._end(("draw", None, "agreement"), now_ms),)

    def decline_draw(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """Return the events of ``player`` declining the opponent's offer."""
        color = self._color_of(player)
        self._require_live(now_ms)
        self._require_offer_to(color)

        return (DrawDeclined(self.game_id, self.seq + 1, self.ply, color, now_ms),)

    def claim_draw(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """
        Return the events of ``player`` claiming a draw.

        Either player may claim when the current position has occurred three
        times, or after fifty moves by each side with no capture or pawn move.

        Raises:
            Conflict: neither rule applies to the current position.
        """
        self._color_of(player)
        self._require_live(now_ms)
        reason = claimable_draw(self.board)
        if reason is None:
            raise Conflict("no draw to claim", game_id=self.game_id, ply=self.ply)

        return (self._end(("draw", None, reason), now_ms),)

    def abort(self, player: str, now_ms: int) -> tuple[GameEvent, ...]:
        """
        Return the events of ``player`` aborting the game.

        Raises:
            Conflict: both sides have already moved.
        """
        self._color_of(player)
        self._require_live(now_ms)
        if self.ply >= _ABORTABLE_PLIES:
            raise Conflict("both sides have moved", game_id=self.game_id)

        return (self._end(("aborted", None, "aborted"), now_ms),)

    def check_flag(self, now_ms: int) -> GameEnded | None:
        """
        Return the timeout ending if the running flag has fallen by ``now_ms``.

        The side that still has time wins, unless it has no mating material
        left: then the game is drawn (FIDE rule 6.9).
        """
        if self.clock is None or self.is_over:
            return None

        loser = self.clock.flagged(now_ms)
        if loser is None:
            return None

        winner = other(loser)
        if self.board.has_insufficient_material(_BOARD_COLOR[winner]):
            return self._end(("draw", None, "timeout_vs_insufficient_material"), now_ms)

        return self._end(("timeout", winner, "timeout"), now_ms)

    # Applying events: the single path that changes the state.

    def apply(self, event: GameEvent) -> None:
        """
        Apply one journaled event.

        Raises:
            ValueError: the event does not follow this state (a bug or a
                corrupt journal); the state is left unchanged.
        """
        prepared = self._prepared
        if prepared is not None and prepared[0] is not event:
            self._take_back()
        if event.game_id != self.game_id or event.seq <= self.seq:
            raise ValueError(f"event {event.seq} does not follow {self!r}")
        if self.is_over or isinstance(event, GameCreated):
            raise ValueError(f"event {event.type} cannot follow {self!r}")

        if isinstance(event, MovePlayed):
            self._apply_move(event)
        elif isinstance(event, DrawOffered):
            self.draw_offer = event.by
        elif isinstance(event, DrawDeclined):
            self.draw_offer = None
        else:
            self._apply_end(event)
        self.seq = event.seq

    def _apply_move(self, event: MovePlayed) -> None:
        if event.ply != len(self.moves) + 1:
            raise ValueError(f"move to ply {event.ply} does not follow {self!r}")

        prepared = self._prepared
        if prepared is not None:
            # apply() took back any other move: this event's is on the board.
            self._prepared = None
            clock = prepared[1]
        else:
            # Everything that can fail comes before the first change.
            move = _move_of(event.uci)
            clock = self.clock
            if clock is not None:
                white_ms, black_ms = _recorded(event.white_ms, event.black_ms)
                clock = clock.pressed(self.turn, event.at_ms, white_ms, black_ms)

            # The journal only holds moves this core found legal: push unchecked.
            self._board.push(move)
        self.clock = clock
        self.moves.append(event)
        self.fen = event.fen
        self.draw_offer = None
        self.updated_at_ms = event.at_ms

    def _apply_end(self, event: GameEnded) -> None:
        clock = self.clock
        if clock is not None:
            white_ms, black_ms = _recorded(event.white_ms, event.black_ms)
            clock = clock.stopped(event.at_ms, white_ms, black_ms)

        self.clock = clock
        self.status = event.status
        self.winner = event.winner
        self.reason = event.reason
        self.ended = event
        self.draw_offer = None
        self.updated_at_ms = event.at_ms

    # Views.

    def view(self, now_ms: int) -> GameView:
        """Return the whole game as seen at ``now_ms``."""
        return GameView(
            id=self.game_id,
            white=self.white,
            black=self.black,
            status=self.status,
            winner=self.winner,
            reason=self.reason,
            fen=self.fen,
            ply=self.ply,
            turn=self.turn,
            moves=tuple(move.uci for move in self.moves),
            clock=None if self.clock is None else self.clock.view(now_ms),
            draw_offer=self.draw_offer,
            created_at_ms=self.created.at_ms,
            updated_at_ms=self.updated_at_ms,
            seq=self.seq,
            initial_ms=self.created.initial_ms,
        )

    def move_result(self, ply: int) -> MoveResult:
        """Return the result given for the move that reached ``ply``."""
        if not 1 <= ply <= len(self.moves):
            raise ValueError(f"no move reached ply {ply} in {self!r}")

        move = self.moves[ply - 1]
        ended = self.ended
        if not (
            ended is not None
            and ended.seq == move.seq + 1
            and ended.reason in AUTOMATIC_ENDINGS
        ):
            ended = None

        return MoveResult(
            ply=move.ply,
            uci=move.uci,
            san=move.san,
            fen=move.fen,
            status="started" if ended is None else ended.status,
            winner=None if ended is None else ended.winner,
            reason=None if ended is None else ended.reason,
            clock=self._clock_after(move, running=ended is None),
        )

    def moves_since(self, ply: int) -> tuple[MovePlayed, ...]:
        """Return the moves that reached a ply above ``ply``, in order."""
        return tuple(self.moves[max(0, ply) :])

    def _clock_after(self, move: MovePlayed, *, running: bool) -> ClockView | None:
        if self.clock is None or move.white_ms is None or move.black_ms is None:
            return None

        mover = color_to_move(move.ply - 1)
        started = running and move.ply >= _ABORTABLE_PLIES

        return ClockView(
            white_ms=move.white_ms,
            black_ms=move.black_ms,
            increment_ms=self.clock.increment_ms,
            running=other(mover) if started else None,
        )

    # Checks and event builders; none of them changes what the state shows.

    def _take_back(self) -> None:
        """Take back the move of a prepared event that was never applied."""
        self._prepared = None
        self._board.pop()

    def _color_of(self, player: str) -> Color:
        if player == self.white and player == self.black:
            return self.turn
        if player == self.white:
            return "white"
        if player == self.black:
            return "black"

        raise Forbidden("not a player of this game", game_id=self.game_id)

    def _is_retry(self, player: str, uci: str, ply: int) -> bool:
        if not 0 <= ply < len(self.moves) or self.moves[ply].uci != uci:
            return False

        mover = color_to_move(ply)

        return player == (self.white if mover == "white" else self.black)

    def _require_live(self, now_ms: int) -> None:
        if self.is_over:
            raise GameOver(
                f"the game is over ({self.reason})",
                game_id=self.game_id,
                status=self.status,
            )

        flagged = None if self.clock is None else self.clock.flagged(now_ms)
        if flagged is not None:
            raise GameOver(f"{flagged} ran out of time", game_id=self.game_id)

    def _require_offer_to(self, color: Color) -> None:
        if self.draw_offer != other(color):
            raise Conflict("no draw offer to answer", game_id=self.game_id)

    def _parse(self, uci: str) -> chess.Move:
        """Return the move ``uci`` names if its piece may make it, check aside."""
        try:
            move = _move_of(uci)
        except ValueError as error:
            raise IllegalMove(
                f"not a UCI move: {uci[:16]!r}", game_id=self.game_id, ply=self.ply
            ) from error

        # Null moves and drops are not pseudo-legal either.
        if not is_pseudo_legal(self.board, move):
            raise self._illegal(uci)

        return move

    def _illegal(self, uci: str) -> IllegalMove:
        return IllegalMove(
            f"illegal move {uci} at ply {self.ply}",
            game_id=self.game_id,
            ply=self.ply,
            uci=uci,
        )

    def _move_events(
        self, mover: Color, uci: str, move: chess.Move, now_ms: int
    ) -> tuple[GameEvent, ...]:
        board = self.board
        pieces = board.occupied.bit_count()
        san = plain_san(board, move)

        # Look at the position after the move; it stays on the board for the
        # event's apply() unless something fails on the way. A pseudo-legal
        # move is legal unless it leaves its own king attacked: seen on the
        # board after it, that costs less than python-chess's is_legal.
        board.push(move)
        try:
            if left_in_check(board):
                raise self._illegal(uci)
            san += check_suffix(board)
            # Only a capture leaves fewer pieces; a promotion swaps one.
            material_changed = (
                move.promotion is not None or board.occupied.bit_count() < pieces
            )
            ending = ending_after(board, san, material_changed=material_changed)
            clock = None if self.clock is None else self.clock.press(mover, now_ms)
            played = MovePlayed(
                game_id=self.game_id,
                seq=self.seq + 1,
                ply=len(self.moves) + 1,
                # A legal move parses only from python-chess's own spelling.
                uci=uci,
                san=san,
                fen=fen_of(board),
                white_ms=None if clock is None else clock.white_ms,
                black_ms=None if clock is None else clock.black_ms,
                at_ms=now_ms,
            )
        except BaseException:
            board.pop()
            raise
        self._prepared = (played, clock)

        if ending is None:
            return (played,)

        status, winner, reason = ending
        ended = GameEnded(
            self.game_id,
            played.seq + 1,
            played.ply,
            status,
            winner,
            reason,
            played.white_ms,
            played.black_ms,
            now_ms,
        )

        return (played, ended)

    def _end(self, ending: Ending, now_ms: int) -> GameEnded:
        status, winner, reason = ending
        white_ms = black_ms = None
        if self.clock is not None:
            white_ms = self.clock.remaining("white", now_ms)
            black_ms = self.clock.remaining("black", now_ms)

        return GameEnded(
            self.game_id,
            self.seq + 1,
            self.ply,
            status,
            winner,
            reason,
            white_ms,
            black_ms,
            now_ms,
        )


def _recorded(white_ms: int | None, black_ms: int | None) -> tuple[int, int]:
    """Return the times an event of a timed game recorded."""
    if white_ms is None or black_ms is None:
        raise ValueError("an event of a timed game must record both clocks")

    return white_ms, black_ms
