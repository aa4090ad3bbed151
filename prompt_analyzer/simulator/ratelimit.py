"""Token buckets that enforce per-minute quotas over sub-minute windows, as the providers do.

A quota of R per minute refills R/60 per second into a bucket holding about one second's worth
(``max(1, R/60)``), so a whole minute's quota sent at once gets 429s: clients must pace evenly.
"""

from __future__ import annotations

import math

from .formats.base import Quota


class TokenBucket:
    """Continuous-refill bucket; a request larger than the bucket may take it into debt once full."""

    __slots__ = ("capacity", "last", "level", "rate")

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.last = now

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.level = min(self.capacity, self.level + (now - self.last) * self.rate)
            self.last = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` can be taken (0: now). Big requests need a full bucket, not more."""
        self._refill(now)
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def reset_in(self) -> float:
        """Seconds until the bucket is full again (for x-ratelimit-reset-*)."""
        return max(0.0, (self.capacity - self.level) / self.rate)


class PlatformLimiter:
    """RPM and optional TPM buckets of one platform; checks both before taking from either."""

    __slots__ = ("requests", "rpm", "tokens", "tpm")

    def __init__(self, rpm: float | None, tpm: int | None, now: float) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(float(tpm), now) if tpm else None

    def acquire(self, tokens: int, now: float) -> tuple[float, str]:
        """(0, "") when admitted, else (seconds to wait, "requests" | "tokens")."""
        wait_r = self.requests.wait_for(1.0, now) if self.requests else 0.0
        wait_t = self.tokens.wait_for(float(tokens), now) if self.tokens else 0.0
        if wait_r > 0 or wait_t > 0:
            return (wait_r, "requests") if wait_r >= wait_t else (wait_t, "tokens")
        if self.requests:
            self.requests.take(1.0)
        if self.tokens:
            self.tokens.take(float(tokens))
        return 0.0, ""

    def quota(self) -> Quota:
        """Current standing, after the last acquire (no refill: cheap and good enough for headers)."""
        r = self.requests
        t = self.tokens
        return Quota(
            rpm=self.rpm,
            tpm=self.tpm,
            requests_remaining=max(0, math.floor(r.level)) if r else 0,
            requests_reset_s=r.reset_in() if r else 0.0,
            tokens_remaining=max(0, math.floor(t.level)) if t else None,
            tokens_reset_s=t.reset_in() if t else 0.0,
        )
