"""
Token buckets that cap how fast one user or one connection may act.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; each
request takes one. The clock is injectable so tests need no sleeps.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A sustained ``rate`` per second with bursts of up to ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")


class TokenBucket:
    """One caller's budget of requests."""

    def __init__(self, limit: RateLimit, clock: Clock = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        # Tokens left at the time of the last update.
        self._tokens = float(limit.burst)
        self._updated = clock()

    def __repr__(self) -> str:
        return f"<TokenBucket {self._tokens:.1f}/{self._limit.burst}>"

    def take(self) -> float:
        """
        Take one token.

        Returns:
            0.0 if a token was taken, else the seconds until one is available.
        """
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(
            float(self._limit.burst), self._tokens + elapsed * self._limit.rate
        )
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0

        return (1.0 - self._tokens) / self._limit.rate


class BucketTable:
    """Buckets by key (a user id), the least recently used forgotten first."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        capacity: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limit = limit
        self._clock = clock
        # Forgetting an idle user only forgives it: a fresh bucket is full.
        self._capacity = capacity
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __repr__(self) -> str:
        return f"<BucketTable keys={len(self._buckets)}/{self._capacity}>"

    def take(self, key: str) -> float:
        """Take a token from ``key``'s bucket; see :meth:`TokenBucket.take`."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._limit, self._clock)
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)

        return bucket.take()


def retry_after_header(wait_seconds: float) -> str:
    """Round a wait up to whole seconds, at least one, for ``Retry-After``."""
    return str(max(1, math.ceil(wait_seconds)))
