"""
Who is calling: bearer tokens turned into a :class:`Principal`.

Tokens are HS256 JWTs with ``sub`` (the user id), ``exp`` and optional
``roles`` (``admin``, ``service``). A :class:`TokenVerifier` is the seam for
an external auth service; :class:`JwtVerifier` checks our own tokens and
:func:`mint_token` issues them (the ``livegame token`` command uses it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import jwt

from livegame.errors import Unauthorized

ADMIN: Final = "admin"
SERVICE: Final = "service"
# Held by the cluster's nodes, for requests they forward to each other.
NODE: Final = "node"
KNOWN_ROLES: Final = frozenset({ADMIN, SERVICE, NODE})

_ALGORITHM: Final = "HS256"
# RFC 7518 wants an HS256 key at least as long as the hash output.
_MIN_SECRET_BYTES: Final = 32
MAX_TOKEN_CHARS: Final = 4096


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user id and its roles."""

    user_id: str
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_service(self) -> bool:
        return SERVICE in self.roles


class TokenVerifier(Protocol):
    """Turn a bearer token into a principal, or raise :class:`Unauthorized`."""

    async def verify(self, token: str) -> Principal: ...


def _check_secret(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if len(raw) < _MIN_SECRET_BYTES:
        raise ValueError(f"the token secret needs at least {_MIN_SECRET_BYTES} bytes")

    return raw


def _check_roles(roles: Iterable[str]) -> list[str]:
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")

    return sorted(set(roles))


def mint_token(
    secret: str | bytes,
    user_id: str,
    *,
    roles: Iterable[str] = (),
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """
    Return a signed token for ``user_id``.

    Raises:
        ValueError: the secret is too short, the user id is empty, a role is
            unknown or the lifetime is not positive.
    """
    if not user_id:
        raise ValueError("the user id must not be empty")

    if ttl_seconds <= 0:
        raise ValueError("the token lifetime must be positive")

    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": user_id,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if roles := _check_roles(roles):
        claims["roles"] = roles

    return jwt.encode(claims, _check_secret(secret), algorithm=_ALGORITHM)


class JwtVerifier:
    """Verify HS256 tokens signed with a shared secret."""

    def __init__(self, secret: str | bytes, *, leeway_seconds: float = 5.0) -> None:
        self._secret = _check_secret(secret)
        # Tolerated clock skew between the issuer and this node.
        self._leeway = leeway_seconds

    def __repr__(self) -> str:
        return f"<JwtVerifier HS256 leeway={self._leeway}s>"

    async def verify(self, token: str) -> Principal:
        return self.verify_nowait(token)

    def verify_nowait(self, token: str) -> Principal:
        """Verify without awaiting: HS256 needs no I/O."""
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("the token is too long")

        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                leeway=self._leeway,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            # Ours, and over: no other verifier may take it instead.
            raise Unauthorized("the token has expired", expired=True) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("the token is invalid") from exc

        return principal_from_claims(claims)


def principal_from_claims(claims: Mapping[str, object]) -> Principal:
    """Build a principal from verified claims; unknown roles are ignored."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("the token has no subject")

    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("the token's roles must be a list of strings")

    return Principal(sub, frozenset(roles) & KNOWN_ROLES)


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, if any."""
    if authorization is None:
        return None

    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>'")

    return token.strip()


async def authenticate(verifier: TokenVerifier, token: str | None) -> Principal:
    """Verify ``token``; a missing one is :class:`Unauthorized` too."""
    if token is None:
        raise Unauthorized("a bearer token is required")

    return await verifier.verify(token)
