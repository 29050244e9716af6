"""
Supervision: OTP strategies, restart policy, the node's tree and its games.

Import from here.
"""

from livegame.supervisor.games import Activate, Games, GamesSupervisor, check_game_id
from livegame.supervisor.policy import (
    Backoff,
    Intensity,
    RestartIntensityExceeded,
    RestartType,
    RestartWindow,
    Strategy,
)
from livegame.supervisor.root import NodeGuardian, spawn_root
from livegame.supervisor.supervisor import (
    ChildFailed,
    ChildSpec,
    ChildStopped,
    StartChild,
    StopChild,
    Supervisor,
    SupervisorLink,
)

__all__ = [
    "Activate",
    "Backoff",
    "ChildFailed",
    "ChildSpec",
    "ChildStopped",
    "Games",
    "GamesSupervisor",
    "Intensity",
    "NodeGuardian",
    "RestartIntensityExceeded",
    "RestartType",
    "RestartWindow",
    "StartChild",
    "StopChild",
    "Strategy",
    "Supervisor",
    "SupervisorLink",
    "check_game_id",
    "spawn_root",
]
