"""The one backoff primitive, and every number of every retry policy in one place.

A :class:`Backoff` is a tiny state object for one retried operation (after psycopg_pool's): ask it for
the delay before the next attempt; it answers ``None`` once no attempt fits before its deadline or its
attempts are spent.  A hint from the other side (a Retry-After) replaces the computed delay.  Provider
retries, database retries and the operations hooks' HTTP calls all use it, with the numbers below.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

# Provider calls: exponential backoff with full jitter; a rate limit waits what the provider asks, up to
# RETRY_AFTER_CAP_S.  A longer hint means the quota is gone (for the day, say): not waited for.
PROVIDER_FIRST_S = 1.0
PROVIDER_MAX_S = 60.0
RETRY_AFTER_CAP_S = 120.0
# Database: doubling from DB_FIRST_S to DB_MAX_S, within run.db_retry_s in all.
DB_FIRST_S = 0.5
DB_MAX_S = 10.0
# Provider batches (batch mode): polls double from BATCH_POLL_FIRST_S up to run.batch_poll_max_s.
BATCH_POLL_FIRST_S = 1.0
# Operations hooks (metrics push, pings, webhook): quick, a few attempts, never holding a run back.
HTTP_FIRST_S = 0.5
HTTP_MAX_S = 10.0


def full_jitter(attempt: int, *, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Uniform in [0, min(cap, first * 2**(attempt-1))]; ``attempt`` counts from 1."""
    return (rng or random).uniform(0, min(cap, first * 2 ** max(0, attempt - 1)))


def doubling(attempt: int, *, first: float, cap: float) -> float:
    """``first``, twice that, ... up to ``cap``; ``attempt`` counts from 1."""
    return min(cap, first * 2 ** max(0, attempt - 1))


def with_hint_jitter(hint: float, rng: random.Random | None = None) -> float:
    """A hinted wait plus a little jitter, so callers told the same instant do not all return together."""
    return hint + (rng or random).uniform(0, min(1.0, hint * 0.1 + 0.05))


@dataclass
class Backoff:
    """The delays of one retried operation.

    ``within_s``: the whole operation (attempts and waits) ends within this many seconds of creation;
    ``attempts``: at most this many attempts in all (the first included); ``jitter``: full jitter
    (independent clients) or plain doubling (one client waiting for a server to come back).
    """

    first: float
    cap: float
    within_s: float | None = None
    attempts: int | None = None
    jitter: bool = True
    rng: random.Random | None = None
    attempt: int = 1  # the attempt under way
    deadline: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.within_s is not None:
            self.deadline = time.monotonic() + self.within_s

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def next(self, hint: float | None = None) -> float | None:
        """The wait before the next attempt, or None when there is none (attempts spent, or the deadline
        reached).  A wait that would end past the deadline is cut to it: the last attempt is made at the
        deadline.  Counts the attempt."""
        if self.attempts is not None and self.attempt >= self.attempts:
            return None
        left = self.remaining()
        if left is not None and left <= 0:
            return None
        if hint is not None:
            delay = with_hint_jitter(max(0.0, hint), self.rng)
        elif self.jitter:
            delay = full_jitter(self.attempt, first=self.first, cap=self.cap, rng=self.rng)
        else:
            delay = doubling(self.attempt, first=self.first, cap=self.cap)
        self.attempt += 1
        return delay if left is None else min(delay, left)
