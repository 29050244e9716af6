"""
JSON at the edges: strict decoding, field readers and encoding.

:mod:`livegame.transport.inbound` builds on the readers to parse what clients
send; :mod:`livegame.transport.outbound` on :func:`encode` to answer. Every
decoding failure is a 400 error with a message naming the offending field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from livegame.transport.errors import InvalidField, MalformedJSON

JsonObject = dict[str, Any]

_NOT_AN_OBJECT: Final = "the JSON document must be an object"


def decode_object(raw: bytes | str) -> JsonObject:
    """Parse one JSON document that must be an object."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from exc

    if not isinstance(document, dict):
        raise MalformedJSON(_NOT_AN_OBJECT)

    return document


def encode(document: object) -> bytes:
    """Serialize a JSON-ready document."""
    return orjson.dumps(document)


def iso_time(at_ms: int) -> str:
    """Format epoch milliseconds as ISO-8601 UTC, e.g. ``2025-01-02T03:04:05.678Z``."""
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)

    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reject_unknown(document: JsonObject, allowed: frozenset[str], where: str) -> None:
    """Refuse fields a message does not define."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidField(f"{where}: unknown field(s) {', '.join(unknown)}")


def read_str(
    document: JsonObject,
    name: str,
    *,
    max_len: int = 64,
    pattern: re.Pattern[str] | None = None,
) -> str:
    """Read a required, non-empty string field."""
    if name not in document:
        raise InvalidField(f"field '{name}' is required")

    value = document[name]
    if not isinstance(value, str):
        raise InvalidField(f"field '{name}' must be a string")

    if not 0 < len(value) <= max_len:
        raise InvalidField(f"field '{name}' must have 1 to {max_len} characters")

    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidField(f"field '{name}' has an invalid format")

    return value


def read_int(document: JsonObject, name: str, *, low: int, high: int) -> int:
    """Read a required integer field within ``[low, high]``."""
    if name not in document:
        raise InvalidField(f"field '{name}' is required")

    value = document[name]
    # bool is an int in Python, never in the contract.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidField(f"field '{name}' must be an integer")

    if not low <= value <= high:
        raise InvalidField(f"field '{name}' must be between {low} and {high}")

    return value


def read_optional_str(
    document: JsonObject, name: str, *, max_len: int = 64
) -> str | None:
    """Read a string field that may be absent or null."""
    if document.get(name) is None:
        return None

    return read_str(document, name, max_len=max_len)


def read_optional_int(
    document: JsonObject, name: str, *, low: int, high: int
) -> int | None:
    """Read an integer field that may be absent or null."""
    if document.get(name) is None:
        return None

    return read_int(document, name, low=low, high=high)


def read_optional_object(document: JsonObject, name: str) -> JsonObject | None:
    """Read an object field that may be absent or null."""
    value = document.get(name)
    if value is None:
        return None

    if not isinstance(value, dict):
        raise InvalidField(f"field '{name}' must be an object")

    return value
