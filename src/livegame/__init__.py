"""live-game-api: a server for live chess games, built as supervised actors."""

__version__ = "0.1.0"
