"""
Errors of the actor runtime.

* :class:`livegame.errors.LiveGameError`
    * :class:`ActorError`
        * :class:`ActorNotFound` - no actor at that path (404)
        * :class:`ActorExists` - a path is already taken
        * :class:`ActorStopped` - the actor stopped before it could reply (503)
        * :class:`ActorCrashed` - the actor crashed handling this message (503)
        * :class:`ActorKilled` - raised inside an actor killed by path
    * :class:`livegame.errors.Overloaded`
        * :class:`MailboxFull` - a bounded mailbox refused a message (503)
        * :class:`AskTimeout` - no reply in time (503)
"""

from __future__ import annotations

from livegame.errors import LiveGameError, Overloaded


class ActorError(LiveGameError):
    code = "actor_error"
    status = 503


class ActorNotFound(ActorError):
    code = "actor_not_found"
    status = 404


class ActorExists(ActorError):
    code = "actor_exists"
    status = 409


class ActorStopped(ActorError):
    code = "actor_stopped"


class ActorCrashed(ActorError):
    code = "actor_crashed"


class ActorKilled(ActorError):
    code = "actor_killed"


class MailboxFull(Overloaded):
    code = "overloaded"


class AskTimeout(Overloaded):
    code = "timeout"
