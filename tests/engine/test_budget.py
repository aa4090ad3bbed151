"""`max_cost_usd`: the budget stops the spend, holds with many calls in flight, and resumes under a higher one.

The accounting is tested on :class:`CostBudget` itself; the stop, the overshoot bound and the resume through
real `analyze` subprocesses, the real SDKs over HTTP against the simulator and a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from prompt_analyzer.config import PLATFORMS, default_platform
from prompt_analyzer.db import PlatformHistory
from prompt_analyzer.engine.budget import RESERVE_MARGIN, CostBudget, Limit
from prompt_analyzer.engine.estimate import HISTORY_BATCHES, CallEstimator, CallProfile
from prompt_analyzer.providers.pricing import ModelPrice

from ..harness import Env, platform_config

# A call of 400 characters in, 1,000 tokens out at $1 / $1 per Mtok and no fee: $0.0011; reserved x1.2.
PRICE = ModelPrice("m", Decimal(1), Decimal(1))
PROFILE = CallProfile(answers=10, input_overhead=0.0, output_tokens=1000.0, searches=0.0, latency_s=1.0)
PROMPT = "x" * 400
CALL = Decimal("0.0011")


def _budget(run: str | None, **own: str) -> CostBudget:
    shared = Limit("run", Decimal(run)) if run is not None else None
    limits = {p: [x for x in (shared, Limit(p, Decimal(own[p])) if p in own else None) if x is not None]
              for p in ("a", "b")}
    return CostBudget(limits, {p: CallEstimator(PROFILE, PRICE) for p in ("a", "b")})


async def test_reserve_until_the_next_call_would_pass_the_limit() -> None:
    budget = _budget("0.005")
    halted = asyncio.Event()
    held = [await budget.reserve("a", PROMPT, halted) for _ in range(3)]
    assert all(h is not None and h.amount == CALL * RESERVE_MARGIN for h in held)
    for h in held:
        budget.settle(h, CALL)
    assert budget.spent() == 3 * CALL  # what was billed, not what was reserved
    fourth = await budget.reserve("a", PROMPT, halted)  # 0.0033 spent + 0.00132 <= 0.005
    assert fourth is not None
    budget.settle(fourth, CALL)
    assert await budget.reserve("a", PROMPT, halted) is None  # 0.0044 + 0.00132 > 0.005, nothing in flight
    assert budget.exhausted["a"] == "[run] max_cost_usd = 0.005 reached (spent 0.0044 USD)"


async def test_a_call_that_does_not_fit_waits_for_the_calls_in_flight() -> None:
    budget = _budget("0.003")
    halted = asyncio.Event()
    first = await budget.reserve("a", PROMPT, halted)
    second = await budget.reserve("b", PROMPT, halted)
    assert first is not None and second is not None
    waiting = asyncio.create_task(budget.reserve("a", PROMPT, halted))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 2 x 0.00132 reserved + 0.00132 > 0.003: wait, they may cost less
    budget.settle(first, Decimal("0.0001"))  # it cost far less than reserved: room for the waiting call
    third = await asyncio.wait_for(waiting, 5)
    assert third is not None
    budget.settle(second, CALL)
    budget.settle(third, CALL)
    assert await budget.reserve("b", PROMPT, halted) is None  # nothing in flight, no room: exhausted
    assert budget.exhausted["b"].startswith("[run] max_cost_usd")


async def test_a_live_call_does_not_wait_for_provider_batches_to_settle() -> None:
    """Batch mode's reservations settle when a provider batch is collected (hours, or after a --detach
    never in this run): a live call that does not fit must end the platform, not wait for them."""
    budget = _budget("0.003")
    halted = asyncio.Event()
    parked = [budget.take("a", PROMPT), budget.take("a", PROMPT)]  # at the provider (batch price)
    assert all(h is not None for h in parked)
    live = await asyncio.wait_for(budget.reserve("b", PROMPT, halted), 5)
    assert live is None and budget.exhausted["b"].startswith("[run] max_cost_usd")
    for h in parked:  # collected: the parked amounts leave `reserved` and `parked` alike
        budget.settle(h, Decimal("0.0001"))
    run_limit = budget._limits["a"][0]
    assert run_limit.reserved == 0 and run_limit.parked == 0


async def test_spent_in_earlier_runs_counts() -> None:
    budget = _budget("0.003")
    budget._limits["a"][0].spent = Decimal("0.002")  # as CostBudget.build sets it from the batch's rows
    assert await budget.reserve("a", PROMPT, asyncio.Event()) is None


async def test_a_platforms_own_limit_stops_only_that_platform() -> None:
    budget = _budget(None, a="0.002")
    halted = asyncio.Event()
    h = await budget.reserve("a", PROMPT, halted)
    budget.settle(h, CALL)
    assert await budget.reserve("a", PROMPT, halted) is None
    assert "platforms.a.max_cost_usd" in budget.exhausted["a"]
    assert all([await budget.reserve("b", PROMPT, halted) for _ in range(20)])  # b has no limit at all


async def test_a_stop_ends_the_wait_and_unknown_costs_count_as_reserved() -> None:
    budget = _budget("0.002")
    halted = asyncio.Event()
    held = await budget.reserve("a", PROMPT, halted)
    waiting = asyncio.create_task(budget.reserve("b", PROMPT, halted))
    await asyncio.sleep(0.05)
    halted.set()
    assert await asyncio.wait_for(waiting, 5) is None and "b" not in budget.exhausted  # stopped, not exhausted
    budget.settle(held, None)  # the provider's answer had no usage: the reservation is the cost
    assert budget.spent() == CALL * RESERVE_MARGIN
    budget.release(held)  # settling twice changes nothing
    assert budget.spent() == CALL * RESERVE_MARGIN


async def test_reserved_returns_to_zero_after_any_mix_of_calls() -> None:
    """Estimates are fractional (token means): once every call settled nothing may read as still in flight,
    or the next call that does not fit would wait for ever instead of stopping the platform."""
    profile = CallProfile(answers=3, input_overhead=123.456789, output_tokens=333.3333, searches=0.37,
                          latency_s=1.0)
    price = ModelPrice("m", Decimal("0.40"), Decimal("1.60"), search_fee=Decimal("0.035"))
    budget = CostBudget({"a": [Limit("run", Decimal("1000"))]}, {"a": CallEstimator(profile, price)})
    halted = asyncio.Event()
    held = [await budget.reserve("a", "p" * (7 * i + 1), halted) for i in range(200)]
    for i, h in enumerate(reversed(held)):
        budget.settle(h, Decimal(i) / 7919)
    assert budget._limits["a"][0].reserved == 0
    budget._limits["a"][0].limit = budget._limits["a"][0].spent  # no room left
    assert await asyncio.wait_for(budget.reserve("a", "p", halted), 5) is None


# ---------------------------------------------------------------------------------- through the CLI

TEXTS = [f"budget question {i}: which {w} should a small team pick in 2026?"
         for i, w in enumerate(["crm", "laptop", "printer", "vpn", "router", "desk", "chair", "phone plan",
                                "bank", "accounting tool", "email host", "backup service", "monitor",
                                "headset", "webcam", "password manager", "note app", "calendar", "cloud host",
                                "design tool", "ide", "ci service", "logging service", "database", "cdn",
                                "form builder", "survey tool", "chat app", "video tool", "wiki"])]
IN_FLIGHT = 10  # per platform


async def _spent(env: Env) -> float:
    row = await env.store.fetchone("SELECT coalesce(sum(cost), 0)::float8 AS c, max(cost)::float8 AS m "
                                   "FROM ai_responses")
    assert row is not None
    return float(row["c"])


async def _overshoot_bound(env: Env, history: dict[str, PlatformHistory]) -> float:
    """The documented bound, from the rows: every platform's calls in flight (max_concurrency) each billed
    beyond its reservation by as much as that platform's worst call was (the reservations of a run are
    the estimates from the history at its start, x RESERVE_MARGIN)."""
    rows = [r for r in await env.rows() if r["status"] == "success"]
    bound = 0.0
    for p in PLATFORMS:
        est = CallEstimator.of(default_platform(p), history.get(p))
        excess = [float(r["cost"]) - float((est.cost(r["prompt_text"]) or 0) * RESERVE_MARGIN)
                  for r in rows if r["platform"] == p]
        bound += IN_FLIGHT * max([0.0, *excess])
    return bound


async def _history(env: Env) -> dict[str, PlatformHistory]:
    return {r.platform: r for r in await env.store.platform_history(PLATFORMS, history_batches=HISTORY_BATCHES)}


async def _max_call(env: Env) -> float:
    row = await env.store.fetchone("SELECT max(cost)::float8 AS m FROM ai_responses")
    return float(row["m"]) if row and row["m"] is not None else 0.0


def _set_run(env: Env, line: str) -> None:
    env.config.write_text(env.config.read_text().replace("[run]\n", f"[run]\n{line}\n", 1))


def _slow_config(**extra: dict[str, Any]) -> str:
    return platform_config(**{p: {"max_concurrency": IN_FLIGHT, **extra.get(p, {})} for p in PLATFORMS})


async def _answered_once(env: Env) -> None:
    stats = await env.sim.stats()
    for p in PLATFORMS:
        counts = stats["answered"][p]
        assert all(n == 1 for n in counts.values()), f"{p}: a pair was paid twice"


async def _capped_run(env: Env, budget: float) -> Any:
    for p in PLATFORMS:  # every call takes a while: many of them are in flight when the budget is reached
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.3, latency_sigma=0.1))
    await env.add_prompts(TEXTS)
    env.write_config(_slow_config())
    _set_run(env, f"max_cost_usd = {budget}")
    r = await env.analyze("run", "--key", "capped", "--json", timeout=120)
    assert r.code == 1, r.stderr[-2000:]
    assert r.json()["status"] == "completed_with_errors"
    assert "budget" in r.stderr
    return r


async def test_the_budget_stops_the_spend_with_many_calls_in_flight(env: Env) -> None:
    budget = 0.4
    await _capped_run(env, budget)
    rows = await env.rows()
    assert len(rows) == len(TEXTS) * len(PLATFORMS)
    capped = [x for x in rows if x["error_class"] == "budget_exhausted"]
    assert capped and all(x["status"] == "error" and x["attempts"] == 0 for x in capped)
    assert {x["status"] for x in rows} == {"success", "error"}  # none left `processing`
    spent, biggest = await _spent(env), await _max_call(env)
    # The documented bound: the calls in flight when the budget was reached, each beyond its reservation.
    bound = await _overshoot_bound(env, {})  # a fresh database: the first run reserved from the defaults
    assert bound <= IN_FLIGHT * len(PLATFORMS) * biggest
    assert spent <= budget + bound + 1e-9, (spent, bound)
    # ... and the budget was used, not given up early: a platform stops only when its next call cannot fit.
    assert spent >= budget - 2 * biggest, (spent, biggest)
    stats = await env.sim.stats()
    assert sum(stats["platforms"][p]["ok"] for p in PLATFORMS) == sum(x["status"] == "success" for x in rows)

    # The same budget again: what was spent counts, so the resume stays within it.
    history = await _history(env)
    again = await env.analyze("run", "--key", "capped", "--json", timeout=120)
    assert again.code == 1, again.stderr[-2000:]
    assert await _spent(env) <= budget + bound + await _overshoot_bound(env, history) + 1e-9


async def test_a_higher_budget_resumes_what_the_budget_left(env: Env) -> None:
    await _capped_run(env, 0.3)
    # The same key calls the pairs the budget left, and only those.
    done = await env.analyze("run", "--key", "capped", "--json", "--max-cost-usd", "100", timeout=120)
    assert done.code == 0, done.stderr[-2000:]
    assert done.json()["status"] == "completed"
    assert {x["status"] for x in await env.rows()} == {"success"}
    await _answered_once(env)


async def test_a_platforms_budget_stops_that_platform_and_rerun_finishes_it(env: Env) -> None:
    await env.add_prompts(TEXTS[:12])
    env.write_config(_slow_config(claude={"max_cost_usd": 0.02}))
    r = await env.analyze("run", "--key", "claude-capped", "--json", timeout=120)
    assert r.code == 1, r.stderr[-2000:]
    rows = await env.rows()
    claude = [x for x in rows if x["platform"] == "claude"]
    assert {x["error_class"] for x in claude} >= {"budget_exhausted"}
    claude_cost = sum(float(x["cost"] or 0) for x in claude)
    assert claude_cost <= 0.02 + IN_FLIGHT * max(float(x["cost"] or 0) for x in claude)
    assert all(x["status"] == "success" for x in rows if x["platform"] != "claude")
    out = r.json()
    assert any(e["class"] == "budget_exhausted" for e in out["platforms"]["claude"]["top_errors"])

    env.write_config(_slow_config())  # the platform's budget lifted: rerun calls what it left
    again = await env.analyze("rerun", "claude-capped", "--json", timeout=120)
    assert again.code == 0, again.stderr[-2000:]
    assert {x["status"] for x in await env.rows()} == {"success"}
    await _answered_once(env)


@pytest.mark.parametrize("value", ["-1", '"nope"'])
async def test_a_bad_budget_is_a_usage_error(env: Env, value: str) -> None:
    _set_run(env, f"max_cost_usd = {value}")
    r = await env.analyze("run", "--key", "bad")
    assert r.code == 2 and "max_cost_usd" in r.stderr, r.stderr
