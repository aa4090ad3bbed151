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
    """RPM and optional TPM buckets of one platform (and Anthropic-style separate input and output
    token buckets); checks every bucket before taking from any."""

    __slots__ = ("input_tokens", "input_tpm", "output_tokens", "output_tpm", "requests", "rpm", "tokens", "tpm")

    def __init__(self, rpm: float | None, tpm: int | None, now: float, *, input_tpm: int | None = None,
                 output_tpm: int | None = None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.input_tpm = input_tpm
        self.output_tpm = output_tpm
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(float(tpm), now) if tpm else None
        self.input_tokens = TokenBucket(float(input_tpm), now) if input_tpm else None
        self.output_tokens = TokenBucket(float(output_tpm), now) if output_tpm else None

    @property
    def active(self) -> bool:
        return bool(self.requests or self.tokens or self.input_tokens or self.output_tokens)

    def acquire(self, tokens: int, now: float, *, input_tokens: int = 0, output_tokens: int = 0) -> tuple[float, str]:
        """(0, "") when admitted, else (seconds to wait, "requests" | "tokens" | "input_tokens" |
        "output_tokens").  ``tokens`` is the request's total estimate; input and output are its parts."""
        waits = [
            (self.requests.wait_for(1.0, now) if self.requests else 0.0, "requests"),
            (self.tokens.wait_for(float(tokens), now) if self.tokens else 0.0, "tokens"),
            (self.input_tokens.wait_for(float(input_tokens), now) if self.input_tokens else 0.0, "input_tokens"),
            (self.output_tokens.wait_for(float(output_tokens), now) if self.output_tokens else 0.0, "output_tokens"),
        ]
        wait, what = max(waits, key=lambda w: w[0])
        if wait > 0:
            return wait, what
        for bucket, amount in ((self.requests, 1.0), (self.tokens, tokens), (self.input_tokens, input_tokens),
                               (self.output_tokens, output_tokens)):
            if bucket:
                bucket.take(float(amount))
        return 0.0, ""

    def settle(self, estimated: tuple[int, int], actual: tuple[int, int]) -> None:
        """Bill the answer's real (input, output) tokens in place of the estimates taken at admission, as
        the providers adjust their token counts once an answer is done."""
        (ei, eo), (ai, ao) = estimated, actual
        for bucket, delta in ((self.tokens, ai + ao - ei - eo), (self.input_tokens, ai - ei),
                              (self.output_tokens, ao - eo)):
            if bucket and delta:
                bucket.level = min(bucket.capacity, bucket.level - delta)

    def quota(self) -> Quota:
        """Current standing, after the last acquire (no refill: cheap and good enough for headers)."""
        r = self.requests
        t = self.tokens
        i = self.input_tokens
        o = self.output_tokens
        return Quota(
            rpm=self.rpm,
            tpm=self.tpm,
            requests_remaining=max(0, math.floor(r.level)) if r else 0,
            requests_reset_s=r.reset_in() if r else 0.0,
            tokens_remaining=max(0, math.floor(t.level)) if t else None,
            tokens_reset_s=t.reset_in() if t else 0.0,
            input_tpm=self.input_tpm,
            input_tokens_remaining=max(0, math.floor(i.level)) if i else None,
            input_tokens_reset_s=i.reset_in() if i else 0.0,
            output_tpm=self.output_tpm,
            output_tokens_remaining=max(0, math.floor(o.level)) if o else None,
            output_tokens_reset_s=o.reset_in() if o else 0.0,
        )
