"""Restart policy: strategies, restart types, intensity windows and backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livegame.supervisor import (
    Backoff,
    Intensity,
    RestartIntensityExceeded,
    RestartType,
    RestartWindow,
    Strategy,
)


def test_strategies_and_restart_types_have_their_otp_names() -> None:
    assert [s.value for s in Strategy] == ["one_for_one", "one_for_all", "rest_for_one"]
    assert [t.value for t in RestartType] == ["permanent", "transient", "temporary"]


def test_exceeding_the_intensity_is_an_error_with_a_code() -> None:
    assert RestartIntensityExceeded.code == "restart_intensity_exceeded"


# Backoff.


def test_without_jitter_the_delay_doubles_from_the_initial_value() -> None:
    backoff = Backoff(initial=0.01, maximum=10.0, multiplier=2.0, jitter=0.0)

    delays = [backoff.delay(attempt) for attempt in range(1, 6)]

    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16])


def test_the_delay_stops_growing_at_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=2.0, jitter=0.0)

    assert [backoff.delay(attempt) for attempt in (3, 4, 30)] == [2.0, 2.0, 2.0]


def test_attempt_zero_waits_like_the_first() -> None:
    backoff = Backoff(initial=0.01, jitter=0.0)

    assert backoff.delay(0) == backoff.delay(1) == pytest.approx(0.01)


def test_jittered_delays_grow_exponentially_within_their_bounds() -> None:
    backoff = Backoff(initial=0.01, maximum=100.0, multiplier=2.0, jitter=0.2)
    rng = random.Random(20240611)

    for attempt in range(1, 12):
        base = 0.01 * 2 ** (attempt - 1)
        for _ in range(50):
            delay = backoff.delay(attempt, rng)
            assert base * 0.8 <= delay <= base * 1.2


def test_jitter_actually_spreads_the_delays() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, jitter=0.2)
    rng = random.Random(7)

    delays = {backoff.delay(1, rng) for _ in range(20)}

    assert len(delays) == 20
    assert min(delays) < 1.0 < max(delays)


def test_the_same_seed_gives_the_same_delays() -> None:
    backoff = Backoff()

    first = [backoff.delay(n, random.Random(3)) for n in range(1, 8)]
    second = [backoff.delay(n, random.Random(3)) for n in range(1, 8)]

    assert first == second


@given(
    attempt=st.integers(min_value=0, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
    initial=st.floats(min_value=0.0, max_value=5.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_a_delay_is_never_negative_nor_past_the_maximum(
    attempt: int, seed: int, initial: float, jitter: float
) -> None:
    backoff = Backoff(initial=initial, maximum=2.0, jitter=jitter)

    delay = backoff.delay(attempt, random.Random(seed))

    assert 0.0 <= delay <= 2.0


# The restart window.


def test_the_window_allows_max_restarts_then_refuses() -> None:
    window = RestartWindow(Intensity(max_restarts=3, within=10.0))

    allowed = [window.record(now) for now in (0.0, 1.0, 2.0, 3.0)]

    assert allowed == [True, True, True, False]
    assert len(window) == 4


def test_restarts_older_than_the_window_no_longer_count() -> None:
    window = RestartWindow(Intensity(max_restarts=2, within=10.0))
    window.record(0.0)
    window.record(5.0)

    # At 10.0 the restart at 0.0 is exactly `within` old: it has left.
    assert window.record(10.0)
    assert len(window) == 2
    assert not window.record(14.0)


def test_a_quiet_spell_refills_the_whole_budget() -> None:
    window = RestartWindow(Intensity(max_restarts=2, within=1.0))
    for now in (0.0, 0.1, 0.2):
        window.record(now)

    assert window.record(5.0)
    assert len(window) == 1


def test_clear_forgets_every_restart() -> None:
    window = RestartWindow(Intensity(max_restarts=1, within=60.0))
    window.record(0.0)

    window.clear()

    assert len(window) == 0
    assert window.record(1.0)


def test_a_zero_budget_refuses_the_first_restart() -> None:
    assert not RestartWindow(Intensity(max_restarts=0, within=1.0)).record(0.0)
