"""
The server's exceptions.

Every error the server raises on purpose derives from :class:`LiveGameError`.
Each carries a stable snake_case ``code`` and the HTTP status that the public
contract gives it, so the transport layer maps any of them to the error shape
``{"error": {"code": ..., "message": ...}}`` without a lookup table.

* :class:`LiveGameError`
    * :class:`BadRequest` (400) - malformed input
    * :class:`Unauthorized` (401) - no or bad token
    * :class:`Forbidden` (403) - not allowed, e.g. a move in someone else's game
    * :class:`GameNotFound` (404)
    * :class:`Conflict` (409)
        * :class:`StalePly` - the client's ply is not the game's ply
        * :class:`NotYourTurn`
        * :class:`GameOver` - the game has ended
    * :class:`PayloadTooLarge` (413)
    * :class:`IllegalMove` (422), also a :class:`ValueError`
    * :class:`RateLimited` (429)
    * :class:`Overloaded` (503) - a full mailbox, a timed-out ask
    * :class:`Fenced` (409) - this node no longer owns the game
    * :class:`StorageError` (503) - PostgreSQL, Redis or Kafka failed

The actor runtime has its own family in :mod:`livegame.actors.errors`; they
derive from :class:`LiveGameError` too.
"""

from __future__ import annotations

from typing import ClassVar


class LiveGameError(Exception):
    """Root of every error the server raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str = "", **context: object) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        # Structured context (game id, ply, move...) for logs and error bodies.
        self.context = context

    def to_dict(self) -> dict[str, object]:
        """Return the error in the public contract's shape."""
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(LiveGameError):
    code = "bad_request"
    status = 400


class Unauthorized(LiveGameError):
    code = "unauthorized"
    status = 401


class Forbidden(LiveGameError):
    code = "forbidden"
    status = 403


class GameNotFound(LiveGameError):
    code = "game_not_found"
    status = 404


class Conflict(LiveGameError):
    code = "conflict"
    status = 409


class StalePly(Conflict):
    code = "stale_ply"


class NotYourTurn(Conflict):
    code = "not_your_turn"


class GameOver(Conflict):
    code = "game_over"


class Fenced(Conflict):
    code = "not_owner"


class PayloadTooLarge(LiveGameError):
    code = "payload_too_large"
    status = 413


class IllegalMove(LiveGameError, ValueError):
    code = "illegal_move"
    status = 422


class RateLimited(LiveGameError):
    code = "rate_limited"
    status = 429


class Overloaded(LiveGameError):
    code = "overloaded"
    status = 503


class AuthUnavailable(LiveGameError):
    """The external auth service could not say who the caller is."""

    code = "auth_unavailable"
    status = 503


class StorageError(LiveGameError):
    code = "storage_unavailable"
    status = 503
