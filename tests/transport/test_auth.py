"""Tokens: minting, verifying and reading them from requests."""

from __future__ import annotations

import warnings

import jwt
import pytest
from transport_fakes import SECRET

from livegame.errors import Unauthorized
from livegame.transport.auth import (
    JwtVerifier,
    Principal,
    bearer_token,
    mint_token,
    principal_from_claims,
)

pytestmark = pytest.mark.anyio


async def test_a_minted_token_verifies_to_its_user_and_roles():
    token = mint_token(SECRET, "alice", roles=["admin"])

    principal = await JwtVerifier(SECRET).verify(token)

    assert principal == Principal("alice", frozenset({"admin"}))
    assert principal.is_admin
    assert not principal.is_service


def test_a_token_carries_sub_exp_and_sorted_roles():
    token = mint_token(
        SECRET, "svc", roles=["service", "admin"], ttl_seconds=60, now=100
    )

    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )

    assert claims == {
        "sub": "svc",
        "iat": 100,
        "exp": 160,
        "roles": ["admin", "service"],
    }


def test_a_token_without_roles_has_no_roles_claim():
    token = mint_token(SECRET, "alice")

    assert "roles" not in jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_id": ""}, "user id"),
        ({"user_id": "a", "roles": ["root"]}, "unknown roles"),
        ({"user_id": "a", "ttl_seconds": 0}, "lifetime"),
    ],
)
def test_minting_refuses_nonsense(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mint_token(SECRET, **kwargs)


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        JwtVerifier("short")


def test_an_expired_token_is_unauthorized():
    token = mint_token(SECRET, "alice", ttl_seconds=10, now=1_000)

    with pytest.raises(Unauthorized, match="expired"):
        JwtVerifier(SECRET).verify_nowait(token)


def test_a_token_signed_with_another_secret_is_unauthorized():
    token = mint_token("another-secret-that-is-long-enough-too", "alice")

    with pytest.raises(Unauthorized, match="invalid"):
        JwtVerifier(SECRET).verify_nowait(token)


def test_a_token_with_another_algorithm_is_unauthorized():
    """Only HS256 is accepted, whatever the token's header says."""
    with warnings.catch_warnings():
        # Our secret is shorter than HS512 would like; it is the point here.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode({"sub": "alice", "exp": 2**40}, SECRET, algorithm="HS512")

    with pytest.raises(Unauthorized):
        JwtVerifier(SECRET).verify_nowait(token)


def test_a_token_without_exp_is_unauthorized():
    token = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")

    with pytest.raises(Unauthorized):
        JwtVerifier(SECRET).verify_nowait(token)


def test_a_huge_token_is_refused_before_decoding():
    with pytest.raises(Unauthorized, match="too long"):
        JwtVerifier(SECRET).verify_nowait("x" * 5000)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"sub": 7},
        {"sub": "a", "roles": "admin"},
        {"sub": "a", "roles": [1]},
    ],
)
def test_claims_of_the_wrong_shape_are_unauthorized(claims):
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


def test_unknown_roles_in_a_token_are_ignored():
    principal = principal_from_claims({"sub": "a", "roles": ["admin", "wizard"]})

    assert principal.roles == frozenset({"admin"})


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("Bearer abc", "abc"), ("bearer  abc ", "abc")],
)
def test_the_bearer_token_is_read_from_the_header(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer   ", "abc"])
def test_other_authorization_schemes_are_unauthorized(header):
    with pytest.raises(Unauthorized):
        bearer_token(header)
