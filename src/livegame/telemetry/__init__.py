"""
Logs, metrics and traces: what the server tells its operators.

Every layer uses this package and it uses none of them. Others may import:

* :mod:`.metrics`: every Prometheus metric, label helpers, :func:`render`
  for ``GET /metrics``.
* :mod:`.logging`: :func:`configure_logging`, :func:`get_logger`.
* :mod:`.tracing`: :func:`configure_tracing`, :func:`span`, :func:`inject`,
  :func:`extract`, :func:`message_context`.
"""

from livegame.telemetry.logging import configure_logging, get_logger
from livegame.telemetry.metrics import render
from livegame.telemetry.tracing import (
    configure_tracing,
    extract,
    inject,
    message_context,
    shutdown_tracing,
    span,
)

__all__ = [
    "configure_logging",
    "configure_tracing",
    "extract",
    "get_logger",
    "inject",
    "message_context",
    "render",
    "shutdown_tracing",
    "span",
]
