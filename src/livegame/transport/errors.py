"""
Errors raised at the edges, on top of :mod:`livegame.errors`.

They refine the contract's statuses with codes a client can act on; every one
keeps the root's ``.code``, ``.status`` and ``.to_dict()``.

* :class:`~livegame.errors.BadRequest` (400)
    * :class:`MalformedJSON` - the body or frame is not a JSON document
    * :class:`InvalidField` - a field is missing, unknown or of the wrong type
    * :class:`UnknownType` - a WebSocket frame names no known message type
    * :class:`UnsupportedFrame` - a binary WebSocket frame
    * :class:`TooManySubscriptions` - one connection watches too many games
* :class:`~livegame.errors.LiveGameError`
    * :class:`RouteNotFound` (404) - no route matches the path
    * :class:`MethodNotAllowed` (405)
    * :class:`NotReady` (503) - a dependency is down
    * :class:`UnexpectedReply` (500) - a reply the protocol does not allow
* :class:`~livegame.errors.Forbidden` (403)
    * :class:`NotAPlayer` - an action in a game the user does not play in
    * :class:`AdminOnly` - an admin route without the admin role
"""

from __future__ import annotations

from livegame.errors import BadRequest, Forbidden, LiveGameError, RateLimited


class MalformedJSON(BadRequest):
    code = "malformed_json"


class InvalidField(BadRequest):
    code = "invalid_field"


class UnknownType(BadRequest):
    code = "unknown_type"


class UnsupportedFrame(BadRequest):
    code = "unsupported_frame"


class TooManySubscriptions(BadRequest):
    code = "too_many_subscriptions"


class RouteNotFound(LiveGameError):
    code = "not_found"
    status = 404


class MethodNotAllowed(LiveGameError):
    code = "method_not_allowed"
    status = 405


class NotReady(LiveGameError):
    code = "not_ready"
    status = 503


class UnexpectedReply(LiveGameError):
    code = "internal_error"
    status = 500


class NotAPlayer(Forbidden):
    code = "not_a_player"


class AdminOnly(Forbidden):
    code = "admin_only"


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"


class TooManyConnections(RateLimited):
    code = "too_many_connections"
