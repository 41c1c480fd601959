"""A rate limit per client address for anonymous requests (sign-in pages, links, OIDC).

An anonymous request costs a database write (an audit row, an OIDC state); a thousand of
them a second filled the append-only audit log for good. `RateLimiter` is a token bucket
per key (the client's address): `rate` requests a second on average, bursts of `burst`.
It lives in the process (each server limits what reaches it) and keeps at most
`max_keys` addresses, forgetting the least recently seen first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key: `allow(key)` spends one token or says how long to wait."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> bool:
        """True (and one token spent) if `key` may make a request now."""
        return self.retry_after(key) == 0

    def retry_after(self, key: str) -> int:
        """0 after spending a token for `key`; else the whole seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[key] = bucket  # most recently seen last
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)
