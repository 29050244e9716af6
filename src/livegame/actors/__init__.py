"""
The actor runtime: actors, refs, mailboxes, timers and the actor system.

Import from here; the modules behind it are the runtime's own business.
Domain actors live in subpackages (``livegame.actors.game``).
"""

from livegame.actors.actor import Actor, ActorContext
from livegame.actors.cell import ActorCell, Failure, Parent, Status
from livegame.actors.envelope import Envelope
from livegame.actors.errors import (
    ActorCrashed,
    ActorError,
    ActorExists,
    ActorKilled,
    ActorNotFound,
    ActorStopped,
    AskTimeout,
    MailboxFull,
)
from livegame.actors.mailbox import Mailbox, MailboxStatistics
from livegame.actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef
from livegame.actors.system import (
    DEFAULT_CAPACITY,
    ActorSnapshot,
    ActorSystem,
    FailureInfo,
    NodeStopped,
)
from livegame.actors.timers import Timers

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "DEFAULT_CAPACITY",
    "Actor",
    "ActorCell",
    "ActorContext",
    "ActorCrashed",
    "ActorError",
    "ActorExists",
    "ActorKilled",
    "ActorNotFound",
    "ActorRef",
    "ActorSnapshot",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Envelope",
    "Failure",
    "FailureInfo",
    "Mailbox",
    "MailboxFull",
    "MailboxStatistics",
    "NodeStopped",
    "Parent",
    "Status",
    "Timers",
]
