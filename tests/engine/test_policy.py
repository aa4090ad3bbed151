"""Retry policy, pacing and circuit breaking as small units."""

from __future__ import annotations

import asyncio
import random
import time

from prompt_analyzer.engine.breaker import CircuitBreaker
from prompt_analyzer.engine.pacing import Pacer, TokenBudget
from prompt_analyzer.engine.retry import MAX_RETRY_AFTER_S, backoff, retry_after, should_retry, wait_seconds
from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    RateLimited,
    TransientError,
)


def test_should_retry_by_class() -> None:
    assert should_retry(RateLimited("x")) and should_retry(TransientError("x")) and should_retry(MalformedResponse("x"))
    assert not should_retry(PermanentError("x")) and not should_retry(AuthError("x"))
    assert not should_retry(ValueError("x"))


def test_retry_after_uses_the_hint_capped() -> None:
    assert retry_after(RateLimited("x", retry_after=2.5)) == 2.5
    assert retry_after(RateLimited("x", retry_after=10_000)) == MAX_RETRY_AFTER_S
    assert retry_after(RateLimited("x")) is None and retry_after(TransientError("x")) is None
    w = wait_seconds(RateLimited("x", retry_after=2.0), 1)
    assert 2.0 <= w <= 2.3


def test_backoff_full_jitter_bounds() -> None:
    rng = random.Random(1)
    for attempt in range(1, 10):
        ceiling = min(60.0, 2 ** (attempt - 1))
        values = [backoff(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values) and max(values) > ceiling * 0.8


def test_breaker_opens_on_auth_at_once_and_after_k_failures() -> None:
    b = CircuitBreaker(3)
    assert not b.failure(TransientError("a")) and not b.failure(TransientError("b"))
    b.success()
    assert not b.failure(TransientError("c")) and not b.failure(TransientError("d"))
    assert b.failure(TransientError("e")) and b.open and "3 consecutive" in (b.reason or "")
    a = CircuitBreaker(5)
    assert a.failure(AuthError("bad key")) and "authentication" in (a.reason or "")


async def test_pacer_spaces_calls_evenly_and_pauses_for_everyone() -> None:
    pacer = Pacer(rpm=600, headroom=1.0)  # one call every 100 ms
    stamps: list[float] = []

    async def call() -> None:
        await pacer.acquire()
        stamps.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(6)))
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert all(0.09 <= g <= 1.0 for g in gaps), gaps  # never a burst (the upper bound only catches a stall)
    pacer.pause(0.4)
    t0 = time.monotonic()
    await asyncio.gather(call(), call())
    assert stamps[-2] - t0 >= 0.39 and stamps[-1] - stamps[-2] >= 0.09


async def test_token_budget_waits_for_refill() -> None:
    budget = TokenBudget(tpm=6000)  # 100 tokens per second, bucket of 100
    t0 = time.monotonic()
    await budget.reserve(100)
    await budget.reserve(50)  # the bucket is empty: about half a second
    assert 0.4 <= time.monotonic() - t0 <= 5.0  # about 0.5 s; a loaded machine only adds
    budget.correct(estimated=50, actual=10)  # the call used less: 40 tokens back
    assert budget.level >= 39


async def test_token_budget_books_balance_for_calls_bigger_than_the_bucket() -> None:
    budget = TokenBudget(tpm=6000)  # 100 tokens per second, bucket of 100
    taken = await budget.reserve(500)  # bigger than the bucket: takes the whole bucket, not 500
    assert budget.level <= 0.5
    budget.correct(estimated=500, actual=300)  # 300 used, 100 taken: 200 owed (debt), not 200 given back
    assert -200.5 <= budget.level <= -199
    budget = TokenBudget(tpm=6000)
    await budget.reserve(500)
    budget.correct(estimated=500, actual=40)  # 40 used of the 100 taken: 60 back, not 460
    assert 59.5 <= budget.level <= 61
    assert taken == 100  # reserve says what it took


async def test_token_budget_never_lets_more_through_than_rate_times_time_plus_bucket() -> None:
    """Over many calls bigger than the bucket, tokens billed <= rate x elapsed + capacity at every call's start."""
    rng = random.Random(7)
    budget = TokenBudget(tpm=60_000)  # 1,000 tokens per second, bucket of 1,000
    t0 = time.monotonic()
    billed = 0
    calls = 0
    while time.monotonic() - t0 < 1.0 and calls < 200:
        estimate = rng.randint(1_500, 5_000)  # always bigger than the bucket
        await budget.reserve(estimate)
        allowed = budget.rate * (time.monotonic() - t0) + budget.capacity
        assert billed <= allowed + 1, (calls, billed, allowed)
        actual = rng.choice([rng.randint(0, 900), rng.randint(1_000, 2_000)])  # below and above what was taken
        budget.correct(estimate, actual)
        billed += actual
        calls += 1
    assert calls < 200
