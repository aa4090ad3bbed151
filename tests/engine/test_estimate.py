"""`analyze run --dry-run`: no call, no write, and figures that match what a real run then bills.

Real `analyze` subprocesses, the real SDKs over HTTP against the simulator, a real PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from prompt_analyzer.config import PLATFORMS, PlatformSettings, default_platform
from prompt_analyzer.db import PlanRow, PlatformHistory
from prompt_analyzer.engine.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    CallProfile,
    estimate_platform,
)
from prompt_analyzer.providers.pricing import ModelPrice, batch_price

from ..harness import Env, platform_config

TOPICS = ["best running shoes for flat feet", "cheapest electric cars in europe", "how to learn rust quickly",
          "top project management tools", "is a heat pump worth it", "best budget mechanical keyboards",
          "vegan protein sources compared", "which crm for a small agency", "safest family suv 2026",
          "how to start investing with little money", "best noise cancelling headphones for travel",
          "open source alternatives to slack"]
OTHER = ["best laptops for students", "how to choose a mattress", "cheapest cloud hosting for startups",
         "top note taking apps", "is solar worth it in germany", "best coffee grinders under 200",
         "which bank account for freelancers", "best password managers", "how to fix a slow wifi",
         "good beginner road bikes"]


def _counts_sql() -> str:
    return ("SELECT (SELECT count(*) FROM analysis_batches) AS b, (SELECT count(*) FROM analysis_jobs) AS j, "
            "(SELECT count(*) FROM ai_responses) AS r, (SELECT count(*) FROM ai_response_citations) AS c, "
            "(SELECT count(*) FROM prompt_tracking) AS p, "
            "(SELECT coalesce(max(updated_at), 'epoch') FROM ai_responses) AS u")


async def _requests(env: Env) -> int:
    stats = (await env.sim.stats())["platforms"]
    return sum(int(stats[p]["requests"]) for p in stats)


def _err(estimated: float, billed: float) -> float:
    return abs(estimated - billed) / billed


# ---------------------------------------------------------------------------------- pure figures


def _settings(name: str = "claude", **kw: Any) -> PlatformSettings:
    import dataclasses

    return dataclasses.replace(default_platform(name), **kw)


def test_without_history_the_stated_defaults_apply() -> None:
    ps = _settings("claude")
    plan = PlanRow("claude", calls=10, known=0, known_input=Decimal(0), known_output=Decimal(0),
                   known_searches=Decimal(0), unknown_chars=4000)
    est = estimate_platform(ps, plan, None)
    assert est.basis == {"pair": 0, "platform": 0, "default": 10}
    assert est.input_tokens == 1000 and est.output_tokens == 10 * DEFAULT_OUTPUT_TOKENS
    # claude-haiku-4-5: 1.00 / 5.00 per Mtok, $0.01 a search, one search per call with web search on
    live = (1000 * 1.0 + 4000 * 5.0) / 1e6 + 10 * 0.01
    assert est.cost_live_usd == pytest.approx(live)
    assert est.cost_batch_usd == pytest.approx((1000 * 0.5 + 4000 * 2.5) / 1e6 + 10 * 0.01)  # fees not halved
    assert est.batch_api


def test_history_of_the_pair_wins_then_the_platform() -> None:
    ps = _settings("openai", web_search=False)
    hist = PlatformHistory("openai", answers=50, input_overhead=Decimal(100), output_tokens=Decimal(300),
                           searches=Decimal(0), latency_ms=Decimal(2000))
    plan = PlanRow("openai", calls=3, known=2, known_input=Decimal(500), known_output=Decimal(900),
                   known_searches=Decimal(0), unknown_chars=400)
    est = estimate_platform(ps, plan, hist)
    assert est.basis == {"pair": 2, "platform": 1, "default": 0}
    assert est.input_tokens == 500 + 100 + 100 and est.output_tokens == 900 + 300


def test_perplexity_has_no_batch_api_and_pays_its_request_fee() -> None:
    ps = _settings("perplexity", search_context_size="low")
    plan = PlanRow("perplexity", calls=100, known=0, known_input=Decimal(0), known_output=Decimal(0),
                   known_searches=Decimal(0), unknown_chars=0)
    est = estimate_platform(ps, plan, None)
    assert not est.batch_api and est.cost_batch_usd == est.cost_live_usd
    assert est.cost_live_usd == pytest.approx(100 * DEFAULT_OUTPUT_TOKENS * 15.0 / 1e6 + 100 * 0.006)


def test_duration_follows_the_binding_limit() -> None:
    plan = PlanRow("claude", calls=101, known=0, known_input=Decimal(0), known_output=Decimal(0),
                   known_searches=Decimal(0), unknown_chars=0)
    slow_rate = estimate_platform(_settings(rpm=60.0, max_concurrency=50), plan, None)
    assert slow_rate.bound_by == "rpm" and slow_rate.duration_s == pytest.approx(100 + 3.0)
    few_slots = estimate_platform(_settings(rpm=60000.0, max_concurrency=1), plan, None)
    assert few_slots.bound_by == "concurrency" and few_slots.duration_s == pytest.approx(101 * 3.0)


def test_batch_price_uses_the_tables_batch_price_else_half() -> None:
    p = ModelPrice("m", Decimal("1.00"), Decimal("4.00"), search_fee=Decimal("0.01"))
    assert (batch_price(p).input_per_mtok, batch_price(p).output_per_mtok) == (Decimal("0.5"), Decimal("2.0"))
    assert batch_price(p).search_fee == Decimal("0.01")
    q = ModelPrice("m", Decimal("1.00"), Decimal("4.00"), batch_input_per_mtok=Decimal("0.6"),
                   batch_output_per_mtok=Decimal("2.4"))
    assert (batch_price(q).input_per_mtok, batch_price(q).output_per_mtok) == (Decimal("0.6"), Decimal("2.4"))


def test_profile_never_expects_negative_overhead() -> None:
    h = PlatformHistory("gemini", answers=3, input_overhead=Decimal(-2), output_tokens=Decimal(10),
                        searches=Decimal(1), latency_ms=None)
    assert CallProfile.of(_settings("gemini"), h).input_overhead == 0.0


# ---------------------------------------------------------------------------------- through the CLI


async def test_a_dry_run_calls_nothing_and_writes_nothing(env: Env) -> None:
    await env.add_prompts(TOPICS)
    first = await env.analyze("run", "--key", "history", "--json")  # history, and a batch to resume
    assert first.code == 0, first.stderr[-2000:]
    await env.store.fetchone("UPDATE ai_responses SET status = 'error', error_class = 'transient' "
                             "WHERE platform = 'gemini' RETURNING 1")
    await env.store.fetchone("UPDATE analysis_batches SET status = 'interrupted' RETURNING 1")
    before, calls_before = await env.store.fetchone(_counts_sql()), await _requests(env)
    for args in (("--key", "new-one"), ("--key", "history"), ("--key", "new-two", "--limit", "3")):
        r = await env.analyze("run", "--dry-run", "--json", *args)
        assert r.code == 0, r.stderr[-2000:]
        out = r.json()
        assert set(out["platforms"]) == set(PLATFORMS)
        for p in out["platforms"].values():
            assert {"calls", "tokens", "cost_live_usd", "cost_batch_usd"} <= set(p)
        assert {"cost_live_usd", "cost_batch_usd", "duration_s"} <= set(out)
        plain = await env.analyze("run", "--dry-run", *args)
        assert plain.code == 0 and "nothing was called" in plain.stdout
    assert await env.store.fetchone(_counts_sql()) == before
    assert await _requests(env) == calls_before
    # what the resume would call: only gemini's pairs; gemini has no successful answer anywhere: defaults
    resume = (await env.analyze("run", "--dry-run", "--json", "--key", "history")).json()
    assert {n: p["calls"] for n, p in resume["platforms"].items()} == {
        "openai": 0, "gemini": len(TOPICS), "claude": 0, "perplexity": 0}
    assert resume["platforms"]["gemini"]["basis"] == {"pair": 0, "platform": 0, "default": len(TOPICS)}
    assert resume["spent_usd"] > 0
    limited = (await env.analyze("run", "--dry-run", "--json", "--key", "new-two", "--limit", "3")).json()
    assert limited["calls"] == 3 * len(PLATFORMS)


async def test_the_estimate_predicts_the_bill(env: Env) -> None:
    """Same prompts as an earlier batch: within 1%; new prompts from the platforms' history: within 15%."""
    await env.add_prompts(TOPICS)
    first = await env.analyze("run", "--key", "day-1", "--json")
    assert first.code == 0, first.stderr[-2000:]

    est = (await env.analyze("run", "--dry-run", "--json", "--key", "day-2")).json()
    assert all(p["basis"]["pair"] == len(TOPICS) for p in est["platforms"].values())
    billed = (await env.analyze("run", "--key", "day-2", "--json")).json()
    for name in PLATFORMS:
        assert _err(est["platforms"][name]["cost_live_usd"], billed["platforms"][name]["cost_usd"]) < 0.01, name
        assert est["platforms"][name]["tokens"] == pytest.approx(billed["platforms"][name]["tokens"], rel=0.01)
    assert _err(est["cost_live_usd"], billed["cost_usd"]) < 0.01

    await env.store.fetchone("UPDATE prompt_tracking SET is_active = false RETURNING 1")
    await env.add_prompts(OTHER)
    est = (await env.analyze("run", "--dry-run", "--json", "--key", "day-3")).json()
    assert all(p["basis"]["platform"] == len(OTHER) for p in est["platforms"].values())
    billed = (await env.analyze("run", "--key", "day-3", "--json")).json()
    assert _err(est["cost_live_usd"], billed["cost_usd"]) < 0.15
    # batch mode halves the token part of the three batch APIs; perplexity stays live
    assert est["cost_batch_usd"] < est["cost_live_usd"]
    assert est["platforms"]["perplexity"]["cost_batch_usd"] == est["platforms"]["perplexity"]["cost_live_usd"]


async def test_the_estimate_predicts_a_batch_mode_bill(env: Env) -> None:
    """The dry run's batch figure against `run --mode batch` on the same prompts (OpenAI, Gemini and
    Claude through their batch APIs at the batch price, Perplexity live)."""
    env.write_config("batch_poll_max_s = 0.2\n" + platform_config())
    await env.add_prompts(TOPICS)
    first = await env.analyze("run", "--key", "live-day", "--json")
    assert first.code == 0, first.stderr[-2000:]
    est = (await env.analyze("run", "--dry-run", "--json", "--key", "batch-day")).json()
    billed = (await env.analyze("run", "--key", "batch-day", "--mode", "batch", "--json", timeout=300)).json()
    assert billed["status"] == "completed"
    for name in PLATFORMS:
        assert _err(est["platforms"][name]["cost_batch_usd"], billed["platforms"][name]["cost_usd"]) < 0.01, name
    assert _err(est["cost_batch_usd"], billed["cost_usd"]) < 0.01
    assert billed["cost_usd"] < first.json()["cost_usd"]
