"""The arithmetic of pacing limits, stated limits and the in-flight controller (pure, no I/O)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest

from prompt_analyzer.config import PlatformSettings
from prompt_analyzer.engine.concurrency import START_LATENCY_S, AdjustableLimit, InFlightController, percentile
from prompt_analyzer.engine.limits import BACKOFF, RAMP_EVERY_S, RAMP_STEP, TOKEN_HEADROOM, DailyQuota, LaneLimits
from prompt_analyzer.engine.pacing import Pacer, TokenBudget
from prompt_analyzer.providers.ratelimit_headers import StatedLimits, from_gemini_error, from_headers


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def settings(**kw: object) -> PlatformSettings:
    return PlatformSettings(name="openai", kind="openai", **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- pacer and budget


def test_set_rpm_never_exceeds_the_configured_ceiling() -> None:
    p = Pacer(1000, ceiling=1000)
    assert p.set_rpm(5000) == 1000 and p.rpm == 1000
    assert p.set_rpm(600) == 600
    assert p.interval == pytest.approx(60 / (600 * p.headroom))
    with pytest.raises(ValueError):
        p.set_rpm(0)


def test_set_rpm_without_ceiling_follows_the_learned_limit() -> None:
    p = Pacer(50)
    assert p.set_rpm(3000) == 3000
    assert p.interval == pytest.approx(60 / (3000 * p.headroom))


def test_set_tpm_keeps_what_the_bucket_holds_and_its_debt() -> None:
    b = TokenBudget(60_000, ceiling=60_000)
    assert b.set_tpm(120_000) == 60_000  # never above the configured bound
    b.level = -500.0  # a debt stays a debt
    b.set_tpm(30_000)
    assert b.rate == pytest.approx(500.0) and b.capacity == pytest.approx(500.0)
    assert b.level <= -499.0


# ----------------------------------------------------------------------------- stated limits


def test_openai_headers() -> None:
    s = from_headers({"x-ratelimit-limit-requests": "5000", "x-ratelimit-limit-tokens": "2000000",
                      "x-ratelimit-remaining-requests": "4999", "x-ratelimit-reset-requests": "12ms",
                      "x-ratelimit-remaining-tokens": "1999000", "x-ratelimit-reset-tokens": "6m0s"})
    assert s is not None
    assert (s.rpm, s.tpm, s.requests_remaining) == (5000, 2_000_000, 4999)
    assert s.requests_reset_s == pytest.approx(0.012) and s.tokens_reset_s == pytest.approx(360)


def test_anthropic_headers_keep_input_and_output_apart() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    reset = (now + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s = from_headers({"anthropic-ratelimit-requests-limit": "4000", "anthropic-ratelimit-requests-remaining": "3999",
                      "anthropic-ratelimit-requests-reset": reset,
                      "anthropic-ratelimit-input-tokens-limit": "400000",
                      "anthropic-ratelimit-output-tokens-limit": "80000",
                      "anthropic-ratelimit-tokens-limit": "80000"}, now=now.timestamp())
    assert s is not None
    assert (s.rpm, s.input_tpm, s.output_tpm, s.tpm) == (4000, 400_000, 80_000, 80_000)
    assert s.requests_reset_s == pytest.approx(3.0)


def test_nothing_stated_or_nonsense_is_none() -> None:
    assert from_headers({}) is None
    assert from_headers({"content-type": "application/json"}) is None
    assert from_headers({"x-ratelimit-limit-requests": "lots"}) is None
    s = from_headers({"x-ratelimit-limit-requests": "nan", "x-ratelimit-limit-tokens": "100"})
    assert s is not None and s.rpm is None and s.tpm == 100


def test_gemini_quota_failure_body() -> None:
    def body(qid: str, value: str) -> dict[str, object]:
        return {"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                                    "violations": [{"quotaId": qid, "quotaValue": value}]}]}}

    assert from_gemini_error(body("GenerateRequestsPerMinutePerProjectPerModel", "300")) == StatedLimits(rpm=300)
    assert from_gemini_error(body("GenerateRequestsPerDayPerProjectPerModel", "1500")) == StatedLimits(rpd=1500)
    assert from_gemini_error(body("GenerateContentInputTokensPerModelPerMinute", "250000")) == StatedLimits(tpm=250000)
    assert from_gemini_error({"error": {"code": 429}}) is None


# ----------------------------------------------------------------------------- in flight


async def test_adjustable_limit_grows_and_shrinks_while_held() -> None:
    lim = AdjustableLimit(2)
    await lim.acquire()
    await lim.acquire()
    third = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0)
    assert not third.done() and lim.waiting == 1
    lim.set_limit(3)  # grows: the waiter gets in at once
    assert lim.in_flight == 3
    await asyncio.wait_for(third, 1)
    lim.set_limit(1)  # shrinks: nobody is interrupted, the next waits until two have left
    fourth = asyncio.ensure_future(lim.acquire())
    lim.release()
    lim.release()
    await asyncio.sleep(0)
    assert not fourth.done() and lim.in_flight == 1
    lim.release()
    await asyncio.wait_for(fourth, 1)
    assert lim.in_flight == 1
    lim.release()
    assert lim.in_flight == 0


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    lim = AdjustableLimit(1)
    await lim.acquire()
    waiter = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    lim.release()
    assert lim.in_flight == 0
    await asyncio.wait_for(lim.acquire(), 1)


async def test_a_waiting_call_has_the_limit_recomputed() -> None:
    """Nothing finishes when the provider slows down; the waiters themselves ask for a new limit."""
    calls = 0

    def refresh() -> None:
        nonlocal calls
        calls += 1
        lim.set_limit(2)

    lim = AdjustableLimit(1, refresh=refresh)
    await lim.acquire()
    await asyncio.wait_for(lim.acquire(), 5)  # no release: the refresh raised the limit
    assert calls >= 1 and lim.in_flight == 2


def test_the_first_few_answers_do_not_shrink_the_limit() -> None:
    c = InFlightController(fixed=None, cap=1000, clock=Clock())
    for _ in range(5):
        c.done(c.sent(), 0.5)  # the first answers back are the fastest ones
    assert c.latency_s() == START_LATENCY_S


def test_percentile_nearest_rank() -> None:
    values = sorted(float(i) for i in range(1, 101))
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0


def test_target_before_any_answer_uses_the_start_latency_capped() -> None:
    c = InFlightController(fixed=None, cap=256, clock=Clock())
    assert c.target(60) == max(4, math.ceil(1 * START_LATENCY_S * 1.25))
    assert c.target(60_000) == 256


def test_target_follows_rate_times_p95_latency() -> None:
    clock = Clock()
    c = InFlightController(fixed=None, cap=1000, clock=clock)
    for i in range(200):
        c.done(c.sent(), 1.0 if i % 20 else 3.0)  # 5% slow answers: p95 = 1.0
    assert c.latency_s() == 1.0
    assert c.target(3000) == 63  # 50/s x 1.0 s x 1.25
    for _ in range(200):
        c.done(c.sent(), 6.0)  # the provider slowed: the window now says 6 s
    assert c.target(3000) == 375


def test_a_call_still_out_counts_before_it_answers() -> None:
    clock = Clock()
    c = InFlightController(fixed=None, cap=1000, clock=clock)
    for _ in range(50):
        c.done(c.sent(), 1.0)
    c.sent()
    clock.t += 8.0  # one call has been out 8 s: the latency is at least that
    assert c.latency_s() == pytest.approx(8.0)
    assert c.target(600) == 100


def test_fixed_max_concurrency_never_moves() -> None:
    c = InFlightController(fixed=7, cap=256, clock=Clock())
    for _ in range(20):
        c.done(c.sent(), 30.0)
    assert c.target(60_000) == 7


# ----------------------------------------------------------------------------- lane limits


def test_configured_rpm_is_a_bound_a_lower_stated_limit_wins() -> None:
    lim = LaneLimits(settings(rpm=3000.0, max_concurrency=10))
    lim.observe(StatedLimits(rpm=10_000))
    assert lim.pacer.rpm == 3000
    lim.observe(StatedLimits(rpm=1200))
    assert lim.pacer.rpm == 1200 and lim.rpm_source == "stated"


def test_auto_starts_conservative_then_takes_the_stated_limit() -> None:
    lim = LaneLimits(settings(auto_start_rpm=50.0))
    assert lim.pacer.rpm == 50 and lim.rpm_source == "auto-start"
    lim.observe(StatedLimits(rpm=4000, tpm=400_000))
    assert lim.pacer.rpm == 4000 and lim.budget is not None and lim.budget.tpm == 400_000 * TOKEN_HEADROOM
    snap = lim.snapshot()
    assert snap["rpm"] == 4000 and snap["rpm_source"] == "stated" and snap["tpm_source"] == "stated"


def test_anthropic_input_and_output_become_two_budgets() -> None:
    lim = LaneLimits(settings())
    lim.observe(StatedLimits(rpm=50, tpm=8000, input_tpm=30_000, output_tpm=8000))
    assert lim.input_budget is not None and lim.input_budget.tpm == 30_000 * TOKEN_HEADROOM
    assert lim.output_budget is not None and lim.output_budget.tpm == 8000 * TOKEN_HEADROOM
    assert lim.budget is None  # its "tokens" is only the tighter of the two, already kept


def test_nothing_stated_ramps_additively_until_a_429_then_backs_off() -> None:
    clock = Clock()
    lim = LaneLimits(settings(auto_start_rpm=100.0), clock=clock)
    for _ in range(3):
        clock.t += RAMP_EVERY_S
        lim.done(lim.sent(), 1.0)
    assert lim.pacer.rpm == pytest.approx(100 + 3 * RAMP_STEP * 100) and lim.rpm_source == "ramping"
    lim.rate_limited(None)
    backed = (100 + 3 * RAMP_STEP * 100) * BACKOFF
    assert lim.pacer.rpm == pytest.approx(backed) and lim.rpm_source == "backed-off"
    clock.t += 10 * RAMP_EVERY_S
    lim.done(lim.sent(), 1.0)
    assert lim.pacer.rpm == pytest.approx(backed)  # no more growth this run


def test_a_configured_rpm_neither_ramps_nor_backs_off() -> None:
    clock = Clock()
    lim = LaneLimits(settings(rpm=600.0), clock=clock)
    clock.t += 3 * RAMP_EVERY_S
    lim.done(lim.sent(), 1.0)
    lim.rate_limited(None)  # the pacer's pause handles a 429; the configured pace stays
    assert lim.pacer.rpm == 600


def test_in_flight_limit_follows_the_pace_in_force() -> None:
    lim = LaneLimits(settings(auto_start_rpm=60.0))
    for _ in range(100):
        lim.done(lim.sent(), 2.0)
    assert lim.limit.limit == 4  # 1/s x 2 s x 1.25 = 3, floor 4
    lim.observe(StatedLimits(rpm=6000))
    assert lim.limit.limit == 250  # 100/s x 2 s x 1.25


# ----------------------------------------------------------------------------- daily quota


async def test_daily_quota_reserves_in_chunks_and_gives_back_the_rest() -> None:
    used = 0
    calls = 0
    quota = 50

    async def reserve(n: int) -> int:
        nonlocal used, calls
        calls += 1
        granted = max(0, min(n, quota - used))
        used += granted
        return granted

    async def give_back(n: int) -> None:
        nonlocal used
        used -= n

    q = DailyQuota(50, reserve, give_back)
    assert q.chunk == 1  # 1% of 50, at least one: a crash can leave at most one unsent counted
    taken = [await q.take() for _ in range(60)]
    assert taken.count(True) == 50 and taken[50:] == [False] * 10
    quota = 10_000
    q2 = DailyQuota(quota, reserve, give_back)
    used = 0
    calls = 0
    for _ in range(45):
        assert await q2.take()
    assert calls == 3 and used == 60
    q2.unspent()
    await q2.close()
    assert used == 44


async def test_reserve_waits_again_for_a_debt_billed_while_it_waited() -> None:
    b = TokenBudget(600_000)  # 10,000 a second, a bucket of one second
    await b.reserve(10_000)  # empty now
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            b.correct(1000, 4000)  # an answer in flight was billed 3,000 more than it took
        await asyncio.sleep(seconds)

    await b.reserve(1000, sleep)
    assert len(waits) >= 2 and sum(waits) >= 0.35  # 0.1 s for its share, ~0.3 s more for the debt
