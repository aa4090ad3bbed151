"""Per-platform pacing: evenly spaced calls, a shared pause after a 429, an optional token budget.

Providers enforce their per-minute limits over sub-minute windows, so a minute's quota sent at once
is refused.  ``Pacer`` spaces calls ``60 / rpm`` seconds apart.  It keeps asyncio-throttle's
interface and sliding-window log (``rate_limit`` calls per ``period``) but replaces its 10 ms polling
with one exact sleep per call: the next slot is computed, not discovered, so thousands of waiting
calls cost nothing and high rates stay exact.  Waiters are served in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from asyncio_throttle import Throttler

Sleep = Callable[[float], Awaitable[object]]


class RateLimiter(Protocol):
    """What a lane needs of its pacer (this module's :class:`Pacer`, or one shared by several workers)."""

    rpm: float

    async def acquire(self, sleep: Sleep = ...) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def set_rpm(self, rpm: float) -> float: ...


class TokenLimiter(Protocol):
    """What a lane needs of a token budget (:class:`TokenBudget`, or one shared by several workers)."""

    tpm: float

    async def reserve(self, tokens: int | float, sleep: Sleep = ...) -> float: ...

    def correct(self, estimated: int | float, actual: int | float) -> None: ...

    def set_tpm(self, tpm: float) -> float: ...


# A token budget for a lane: ``(kind, tpm, ceiling)`` -> limiter; kind is ``tokens`` (total), or Anthropic's
# ``input`` / ``output``, so limiters shared by several workers keep one bucket per kind.
BudgetFactory = Callable[[str, float, float | None], TokenLimiter]


class Pacer(Throttler):
    def __init__(self, rpm: float, *, headroom: float = 0.995, ceiling: float | None = None) -> None:
        """``ceiling``: the configured upper bound :meth:`set_rpm` never exceeds (None: none)."""
        # One call per interval: evenly spaced, never a burst.  ``headroom`` keeps us a hair under the
        # limit so network jitter cannot bunch two calls into one of the provider's windows.
        self.headroom = headroom
        self.ceiling = ceiling
        rpm = min(rpm, ceiling) if ceiling else rpm
        super().__init__(rate_limit=1, period=60.0 / (rpm * headroom))
        self.rpm = rpm
        self._lock = asyncio.Lock()
        self._next = 0.0  # monotonic time of the next free slot
        self._paused_until = 0.0
        self.pauses = 0

    @property
    def interval(self) -> float:
        return float(self.period)

    def set_rpm(self, rpm: float) -> float:
        """A learned limit: the pace from the next slot on, never above the ceiling; returns the rpm in
        force.  The slot already promised keeps its time: a change never releases a burst."""
        if rpm <= 0:
            raise ValueError(f"rpm must be > 0, got {rpm!r}")
        rpm = min(rpm, self.ceiling) if self.ceiling else rpm
        if rpm != self.rpm:
            self.rpm = rpm
            self.period = 60.0 / (rpm * self.headroom)
        return self.rpm

    async def acquire(self, sleep: Sleep = asyncio.sleep) -> None:
        """Wait for the next slot.  ``sleep`` may end early (a stop): the caller checks why it woke."""
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next, self._paused_until)
            self._next = slot + self.interval
            if slot > now:
                await sleep(slot - now)
            self._task_logs.append(slot)
            self.flush()

    def pause(self, seconds: float) -> None:
        """The provider said "wait": every caller of this platform waits, not just the one refused."""
        until = time.monotonic() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1


class TokenBudget:
    """Tokens-per-minute as a bucket refilled continuously, holding at most one second's worth.

    A call reserves its estimated tokens before it starts, at most a full bucket (a call bigger than
    the bucket waits for a full one); once the answer arrives the tokens actually billed replace what
    was taken.  The books balance: ``correct`` gives back only what ``reserve`` took and the call did not
    use, and a call that used more than it took leaves the bucket in debt (below zero), so the next
    calls wait until the rate has paid for it.  Over any span, billed tokens stay within
    ``rate x elapsed + capacity`` (plus the calls still in flight).
    """

    def __init__(self, tpm: float, *, ceiling: float | None = None) -> None:
        """``ceiling``: the configured upper bound :meth:`set_tpm` never exceeds (None: none)."""
        self.ceiling = ceiling
        self.tpm = min(tpm, ceiling) if ceiling else tpm
        self.rate = self.tpm / 60.0
        self.capacity = max(self.rate, 1.0)
        self.level = self.capacity  # below zero: tokens billed beyond what was reserved, still owed
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def set_tpm(self, tpm: float) -> float:
        """A learned limit (never above the ceiling); returns the tpm in force.  What the bucket holds is
        kept (at most the new capacity), so a change neither forgives a debt nor grants a burst."""
        if tpm <= 0:
            raise ValueError(f"tpm must be > 0, got {tpm!r}")
        tpm = min(tpm, self.ceiling) if self.ceiling else tpm
        if tpm != self.tpm:
            self._refill()
            self.tpm = tpm
            self.rate = tpm / 60.0
            self.capacity = max(self.rate, 1.0)
            self.level = min(self.level, self.capacity)
        return self.tpm

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def taken(self, estimated: int | float) -> float:
        """What ``reserve(estimated)`` takes from the bucket: the estimate, at most a full bucket."""
        return min(max(float(estimated), 0.0), self.capacity)

    async def reserve(self, tokens: int | float, sleep: Sleep = asyncio.sleep) -> float:
        """Wait until the bucket holds the call's share, take it and return the amount taken.
        ``sleep`` may end early (a stop): the caller checks why it woke."""
        need = self.taken(tokens)
        async with self._lock:
            self._refill()
            # Again after each wait: an answer billed meanwhile may have put the bucket in debt.
            while self.level < need:
                if await sleep((need - self.level) / self.rate) is False:
                    break  # halted (a stop): the caller checks why it woke
                self._refill()
            self.level -= need
        return need

    def correct(self, estimated: int | float, actual: int | float) -> None:
        """Replace what ``reserve(estimated)`` took with the tokens actually billed (may leave a debt).

        ``estimated`` is the value passed to :meth:`reserve` (or the amount it returned: the same).
        """
        self._refill()
        self.level = min(self.capacity, self.level + self.taken(estimated) - max(float(actual), 0.0))
