"""The external auth service's verifier, against a real HTTP endpoint on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from auth_stub import AuthStub, auth_stub
from livegame.app.embedded import free_port
from livegame.errors import AuthUnavailable, Unauthorized
from livegame.telemetry import metrics
from livegame.transport.auth import JwtVerifier, Principal, mint_token
from livegame.transport.introspection import ChainVerifier, IntrospectionVerifier

pytestmark = pytest.mark.anyio

SECRET = "s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stub() -> AsyncIterator[AuthStub]:
    async with auth_stub() as started:
        yield started


def calls(service: str, status: str) -> float:
    labels = {"service": service, "status": status}
    value = metrics.REGISTRY.get_sample_value("external_service_calls_total", labels)
    return value or 0.0


@pytest.fixture
async def verifier(stub: AuthStub) -> AsyncIterator[IntrospectionVerifier]:
    made = IntrospectionVerifier(stub.url, timeout_seconds=1.0)
    yield made
    await made.close()


async def test_a_known_token_is_its_subject_with_its_roles(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    stub.know("t-alice", "alice")
    stub.know("t-ops", "ops", roles=["admin", "wizard"])
    stub.know("t-bot", "bot", scope="openid service")

    assert await verifier.verify("t-alice") == Principal("alice")
    assert await verifier.verify("t-ops") == Principal("ops", frozenset({"admin"}))
    assert await verifier.verify("t-bot") == Principal("bot", frozenset({"service"}))
    assert [token for token, _ in stub.calls] == ["t-alice", "t-ops", "t-bot"]


async def test_an_unknown_or_expired_token_is_refused(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    stub.know("t-old", "alice", exp=int(time.time()) - 10)
    stub.know("t-nobody", "")

    with pytest.raises(Unauthorized, match="invalid"):
        await verifier.verify("t-unknown")
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify("t-old")
    with pytest.raises(Unauthorized, match="subject"):
        await verifier.verify("t-nobody")


async def test_answers_are_reused_until_the_cache_or_the_token_runs_out(
    stub: AuthStub,
) -> None:
    clock = Clock()
    wall = Clock()
    wall.now = 1_000_000.0
    stub.know("t-long", "alice")
    stub.know("t-short", "bob", exp=wall.now + 5)
    verifier = IntrospectionVerifier(
        stub.url, cache_seconds=60, clock=clock, wall_clock=wall
    )
    try:
        for _ in range(3):
            await verifier.verify("t-long")
            await verifier.verify("t-short")
        assert len(stub.calls) == 2

        # Past the token's own exp, though well within the cache's minute.
        clock.now += 6
        await verifier.verify("t-long")
        assert len(stub.calls) == 2
        await verifier.verify("t-short")
        assert len(stub.calls) == 3

        clock.now += 60
        await verifier.verify("t-long")
        assert len(stub.calls) == 4
    finally:
        await verifier.close()


async def test_a_refusal_is_remembered_for_a_few_seconds(stub: AuthStub) -> None:
    clock = Clock()
    verifier = IntrospectionVerifier(stub.url, clock=clock)
    try:
        for _ in range(3):
            with pytest.raises(Unauthorized):
                await verifier.verify("t-new")
        assert len(stub.calls) == 1

        # Issued since: known once the refusal has been forgotten.
        stub.know("t-new", "carol")
        clock.now += 6
        assert (await verifier.verify("t-new")).user_id == "carol"
        assert len(stub.calls) == 2
    finally:
        await verifier.close()


async def test_concurrent_checks_of_one_token_share_one_call(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    stub.know("t-alice", "alice")
    stub.hold = anyio.Event()
    seen: list[Principal] = []

    async def check() -> None:
        seen.append(await verifier.verify("t-alice"))

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(check)
        while not stub.calls:
            await anyio.sleep(0.01)
        stub.hold.set()

    assert seen == [Principal("alice")] * 20
    assert len(stub.calls) == 1


async def test_a_caller_giving_up_leaves_the_shared_call_to_the_others(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    stub.know("t-alice", "alice")
    stub.hold = anyio.Event()
    seen: list[Principal] = []

    impatient = anyio.CancelScope()
    gave_up = anyio.Event()

    async def check() -> None:
        seen.append(await verifier.verify("t-alice"))

    async def give_up() -> None:
        with impatient:
            await check()
        gave_up.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(give_up)
        tasks.start_soon(check)
        while not stub.calls:
            await anyio.sleep(0.01)
        impatient.cancel()
        await gave_up.wait()
        stub.hold.set()

    assert impatient.cancelled_caught
    assert seen == [Principal("alice")]
    assert len(stub.calls) == 1


async def test_the_node_shows_its_own_token_to_the_service(stub: AuthStub) -> None:
    stub.know("t-alice", "alice")
    verifier = IntrospectionVerifier(stub.url, client_token="node-credential")
    try:
        await verifier.verify("t-alice")
    finally:
        await verifier.close()

    assert stub.calls == [("t-alice", "Bearer node-credential")]


@pytest.mark.parametrize(
    "failure", ["status_500", "status_401", "not_json", "too_large", "slow"]
)
async def test_a_failing_service_gives_auth_unavailable_and_nothing_is_cached(
    failure: str, stub: AuthStub
) -> None:
    stub.know("t-alice", "alice")
    if failure == "status_500":
        stub.fail_with = 500
    elif failure == "status_401":
        stub.fail_with = 401
    elif failure == "not_json":
        stub.garbage = True
    elif failure == "too_large":
        stub.huge = True
    else:
        stub.hold = anyio.Event()
    expected_status = "timeout" if failure == "slow" else "error"
    before = calls("auth-api", expected_status)
    verifier = IntrospectionVerifier(stub.url, timeout_seconds=0.3)
    try:
        with pytest.raises(AuthUnavailable) as refused:
            await verifier.verify("t-alice")
        assert refused.value.status == 503
        assert calls("auth-api", expected_status) == before + 1

        # Back to health: the next check asks again and lets alice in.
        stub.fail_with, stub.garbage, stub.huge = None, False, False
        if stub.hold is not None:
            stub.hold.set()
            stub.hold = None
        assert await verifier.verify("t-alice") == Principal("alice")
    finally:
        await verifier.close()


async def test_an_unreachable_service_gives_auth_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/introspect"
    verifier = IntrospectionVerifier(url, timeout_seconds=1.0)
    try:
        with pytest.raises(AuthUnavailable):
            await verifier.verify("t-alice")
    finally:
        await verifier.close()


async def test_an_oversized_token_is_refused_without_a_call(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    with pytest.raises(Unauthorized, match="too long"):
        await verifier.verify("x" * 5000)

    assert stub.calls == []


async def test_the_chain_checks_our_own_tokens_without_a_call(
    stub: AuthStub, verifier: IntrospectionVerifier
) -> None:
    chain = ChainVerifier(JwtVerifier(SECRET), verifier)
    stub.know("t-dana", "dana")
    ours = mint_token(SECRET, "root", roles=["admin"])
    expired = mint_token(SECRET, "root", ttl_seconds=60, now=time.time() - 3600)
    forged = mint_token("f" * 32, "root", roles=["admin"])

    assert await chain.verify(ours) == Principal("root", frozenset({"admin"}))
    with pytest.raises(Unauthorized, match="expired"):
        await chain.verify(expired)
    assert stub.calls == []

    assert await chain.verify("t-dana") == Principal("dana")
    # Not ours: the service is asked, and knows nothing of it.
    with pytest.raises(Unauthorized):
        await chain.verify(forged)
    assert [token for token, _ in stub.calls] == ["t-dana", forged]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        IntrospectionVerifier("http://127.0.0.1:1/", timeout_seconds=0)
    with pytest.raises(ValueError, match="cache"):
        IntrospectionVerifier("http://127.0.0.1:1/", cache_size=0)
