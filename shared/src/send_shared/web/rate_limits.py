"""Per-organisation rate limits: a token bucket for writes and one for reads, per organisation.

Written by hand rather than with a library: the rule is twenty lines, has to run inside the
authentication dependency (the organisation is known only once the token is verified), and must
answer with our problem+json and ``Retry-After``. Buckets live in the process, so N replicas allow
N times the rate; a gateway in front is the place for a global limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from send_shared.settings import ServiceSettings
from send_shared.web.problems import Problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED = 10_000


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float = field(init=False)
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> float:
        """Spend one token; return 0 when allowed, else the seconds until one is free."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class Limit:
    rate: float
    burst: int
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED:
                self.buckets.clear()
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, at=now)
        return bucket.take(now)


class RateLimits:
    def __init__(self, writes: Limit, reads: Limit) -> None:
        self.writes = writes
        self.reads = reads

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RateLimits:
        return cls(
            Limit(settings.rate_limit_writes_per_second, settings.rate_limit_write_burst),
            Limit(settings.rate_limit_reads_per_second, settings.rate_limit_read_burst),
        )

    def spend(self, organisation_id: str, *, write: bool) -> None:
        wait = (self.writes if write else self.reads).wait(organisation_id, time.monotonic())
        if wait > 0:
            kind = "writes" if write else "reads"
            raise Problem(
                429,
                "Too many requests",
                f"your organisation's limit for {kind} is used up; try again in {math.ceil(wait)} s",
                kind="rate-limited",
                headers={"Retry-After": str(math.ceil(wait))},
            )
