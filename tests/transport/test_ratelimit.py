"""Token buckets, with a clock the test moves by hand."""

from __future__ import annotations

import pytest

from livegame.transport.ratelimit import (
    BucketTable,
    RateLimit,
    TokenBucket,
    retry_after_header,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_says_how_long_to_wait():
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(rate=2.0, burst=3), clock)

    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)


def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(rate=1.0, burst=2), clock)
    bucket.take()
    bucket.take()

    clock.now += 1.0
    assert bucket.take() == 0.0
    assert bucket.take() > 0

    clock.now += 100.0
    assert [bucket.take() for _ in range(3)][:2] == [0.0, 0.0]


def test_a_clock_going_backwards_grants_nothing():
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(rate=1.0, burst=1), clock)
    bucket.take()

    clock.now -= 50
    assert bucket.take() > 0


def test_each_key_has_its_own_bucket():
    table = BucketTable(RateLimit(rate=1.0, burst=1), clock=ManualClock())

    assert table.take("alice") == 0.0
    assert table.take("alice") > 0
    assert table.take("bob") == 0.0


def test_the_table_forgets_the_least_recently_seen_key():
    table = BucketTable(RateLimit(rate=1.0, burst=1), capacity=2, clock=ManualClock())
    table.take("alice")
    table.take("bob")
    table.take("alice")

    table.take("carol")

    # bob was forgotten, so he starts again with a full bucket.
    assert table.take("bob") == 0.0
    assert repr(table) == "<BucketTable keys=2/2>"


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_rate_limit_must_allow_something(rate, burst):
    with pytest.raises(ValueError, match="rate"):
        RateLimit(rate, burst)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_rounds_up_to_whole_seconds(wait, header):
    assert retry_after_header(wait) == header
