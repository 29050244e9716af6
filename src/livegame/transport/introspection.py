"""
Tokens checked by an external auth service (RFC 7662 token introspection).

With ``AUTH_URL`` set, a token that is not one of ours (an HS256 JWT signed
with ``AUTH_SECRET``) is sent to that endpoint as ``token=<token>`` in a form
POST. The service answers ``{"active": true, "sub": "alice", "exp": ...}``
for a token it knows, optionally with ``roles`` (a list) or ``scope`` (a
space-separated string) naming ``admin`` or ``service``, and
``{"active": false}`` for any other. Answers are cached per token, a known
one until its ``exp`` or ``AUTH_CACHE_SECONDS``, whichever comes first, an
unknown one for a few seconds; concurrent checks of one token share a
single call. A service that fails or does not answer within
``AUTH_TIMEOUT_SECONDS`` makes the request fail with 503 ``auth_unavailable``:
the caller is neither let in nor told its token is bad.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final

import aiohttp
import orjson
import structlog

from livegame.errors import AuthUnavailable, Unauthorized
from livegame.telemetry.metrics import external_call
from livegame.telemetry.tracing import child_span, inject
from livegame.transport.auth import (
    MAX_TOKEN_CHARS,
    JwtVerifier,
    Principal,
    TokenVerifier,
    principal_from_claims,
)

log = structlog.get_logger("livegame.transport.auth")

SERVICE_NAME: Final = "auth-api"
# How long an unknown token is remembered: a client retrying a bad token
# costs one call per this many seconds, and a token the service has just
# issued is not refused for long.
_NEGATIVE_SECONDS: Final = 5.0
# Calls to the service at once; more wait for a connection (within the timeout).
_MAX_CALLS: Final = 64
_LARGEST_ANSWER: Final = 64 * 1024

_Entry = tuple[float, Principal | str]


class IntrospectionVerifier:
    """
    Ask a token introspection endpoint who holds a token; remember the answer.

    ``close()`` releases its HTTP connections; a closed verifier opens new
    ones on its next call.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 2.0,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
        client_token: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("the auth timeout must be positive")
        if cache_seconds < 0 or cache_size < 1:
            raise ValueError("the auth cache needs a lifetime >= 0 and a size >= 1")
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._headers = {"Accept": "application/json"}
        if client_token:
            self._headers["Authorization"] = f"Bearer {client_token}"
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[Principal | str]] = {}
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"<IntrospectionVerifier {self.url} cached={len(self._cache)}>"

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("the token is too long")

        key = hashlib.blake2b(token.encode(), digest_size=16).digest()
        entry = self._cache.get(key)
        if entry is not None and entry[0] > self._clock():
            self._cache.move_to_end(key)
            return _outcome(entry[1])

        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._look_up(key, token))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # One caller giving up must not cancel the others' shared call.
        return _outcome(await asyncio.shield(task))

    def _settled(self, key: bytes, task: asyncio.Task[Principal | str]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            # Retrieved here too, for when every caller has given up on it.
            task.exception()

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _look_up(self, key: bytes, token: str) -> Principal | str:
        answer = await self._ask(token)
        outcome, lifetime = self._judge(answer)
        if lifetime > 0:
            self._remember(key, outcome, lifetime)

        return outcome

    async def _ask(self, token: str) -> Mapping[str, object]:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=_MAX_CALLS),
            )
        headers = inject(dict(self._headers))
        try:
            with (
                child_span("auth.introspect", {"peer.service": SERVICE_NAME}),
                external_call(SERVICE_NAME),
            ):
                async with session.post(
                    self.url, data={"token": token}, headers=headers
                ) as reply:
                    if reply.status != 200:
                        raise _Refused(f"it answered HTTP {reply.status}")
                    body = bytearray()
                    async for chunk in reply.content.iter_any():
                        body += chunk
                        if len(body) > _LARGEST_ANSWER:
                            raise _Refused("its answer is too large")
                    answer = orjson.loads(body)
                    if not isinstance(answer, dict):
                        raise _Refused("its answer is not a JSON object")
        except (aiohttp.ClientError, TimeoutError, ValueError, _Refused) as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("auth_service_failed", url=self.url, error=reason)
            raise AuthUnavailable(
                "the auth service is unavailable; retry later"
            ) from exc

        return answer

    def _judge(self, answer: Mapping[str, object]) -> tuple[Principal | str, float]:
        """Return the principal or the refusal, and how long it may be cached."""
        negative = min(self._cache_seconds, _NEGATIVE_SECONDS)
        if answer.get("active") is not True:
            return "the token is invalid", negative

        lifetime = self._cache_seconds
        expires = answer.get("exp")
        if expires is not None:
            if not isinstance(expires, int | float) or isinstance(expires, bool):
                return "the token's exp is not a number", negative
            left = float(expires) - self._wall_clock()
            if left <= 0:
                return "the token has expired", negative
            lifetime = min(lifetime, left)

        claims = dict(answer)
        scope = answer.get("scope")
        if "roles" not in claims and isinstance(scope, str):
            claims["roles"] = scope.split()
        try:
            return principal_from_claims(claims), lifetime
        except Unauthorized as refusal:
            return refusal.message, negative

    def _remember(self, key: bytes, outcome: Principal | str, lifetime: float) -> None:
        self._cache[key] = (self._clock() + lifetime, outcome)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


class _Refused(Exception):
    """The auth service answered, but not with an introspection result."""


def _outcome(outcome: Principal | str) -> Principal:
    if isinstance(outcome, str):
        raise Unauthorized(outcome)

    return outcome


class ChainVerifier:
    """
    Our own tokens first, then the auth service's.

    Tokens signed with ``AUTH_SECRET`` (operators' admin tokens, ``service``
    tokens, the nodes' own forwarding tokens) are checked here without a
    call; any other goes to the auth service.
    """

    def __init__(self, local: JwtVerifier, remote: TokenVerifier) -> None:
        self._local = local
        self._remote = remote

    def __repr__(self) -> str:
        return f"<ChainVerifier {self._local!r} then {self._remote!r}>"

    async def verify(self, token: str) -> Principal:
        try:
            return self._local.verify_nowait(token)
        except Unauthorized as refusal:
            if refusal.context.get("expired"):
                raise
        return await self._remote.verify(token)
