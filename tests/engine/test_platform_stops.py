"""When a platform stops for the run (auth error, daily quota) and when it only slows (429s); and a batch's
status and exit code always come from all its pairs."""

from __future__ import annotations

import dataclasses
import time

from prompt_analyzer.config import PLATFORMS
from prompt_analyzer.engine.breaker import CircuitBreaker
from prompt_analyzer.providers import AuthError, RateLimited, TransientError

from ..harness import PROJECT, Env, platform_config


def test_breaker_ignores_rate_limits() -> None:
    b = CircuitBreaker(threshold=2)
    for _ in range(10):
        assert not b.failure(RateLimited("429", retry_after=None))
    assert not b.open
    assert not b.failure(TransientError("500"))
    assert b.failure(TransientError("500"))
    assert b.open


def test_breaker_opens_at_once_on_auth() -> None:
    b = CircuitBreaker(threshold=5)
    assert b.failure(AuthError("401"))
    assert b.error_class == "circuit_open"


async def test_a_429_storm_never_opens_the_breaker(env: Env) -> None:
    env.sim.set_config(dataclasses.replace(env.sim.config, fault_retry_after_s=0.05))
    env.write_config(platform_config(openai={"max_attempts": 2, "max_concurrency": 2}))
    texts = [f"storm {i} [[sim:openai:fault=429]]" for i in range(10)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "storm", "--json")
    assert r.code == 1, r.stderr[-2000:]
    rows = [x for x in await env.rows() if x["platform"] == "openai"]
    assert len(rows) == 10
    assert {(x["status"], x["error_class"]) for x in rows} == {("error", "rate_limited")}
    assert all(x["attempts"] == 2 for x in rows)
    assert r.json()["platforms"]["openai"]["run"]["circuit_open"] is None


async def test_after_an_auth_error_no_more_calls_leave(env: Env) -> None:
    """Workers already waiting in the pacer must not send once the breaker is open."""
    key = env.env()["OPENAI_API_KEY"]
    env.sim.set_config(env.sim.config.with_platform("openai", invalid_keys=(key,)))
    # 0.5 s between calls: the first 401 is back long before the next slot, even on a loaded machine
    env.write_config(platform_config(openai={"rpm": 120, "max_concurrency": 10}))
    await env.add_prompts([f"auth {i}" for i in range(30)])
    r = await env.analyze("run", "--key", "auth", "--json")
    assert r.code == 1, r.stderr[-2000:]
    stats = (await env.sim.stats())["platforms"]["openai"]
    assert stats["401"] <= 2, f"{stats['401']} calls were sent after the key was refused"
    rows = [x for x in await env.rows() if x["platform"] == "openai"]
    assert {x["status"] for x in rows} == {"error"} and len(rows) == 30
    assert {x["error_class"] for x in rows} <= {"auth", "circuit_open"}
    # calls that never left were not counted as attempts
    assert sum(x["attempts"] for x in rows) == stats["401"]


async def test_a_quota_gone_for_the_day_stops_the_platform_not_the_run(env: Env) -> None:
    """A 429 whose hint is an hour: openai stops at once as `quota_exhausted`, resumable; others finish."""
    env.sim.set_config(dataclasses.replace(env.sim.config, fault_retry_after_s=3600.0))
    env.write_config(platform_config(openai={"max_concurrency": 2}))
    texts = [f"quota {i} [[sim:openai:fault=429]]" for i in range(6)]
    await env.add_prompts(texts)
    t0 = time.monotonic()
    r = await env.analyze("run", "--key", "quota", "--json", timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.code == 1, r.stderr[-2000:]
    assert "quota" in r.stderr
    rows = await env.rows()
    openai = [x for x in rows if x["platform"] == "openai"]
    assert len(openai) == 6 and {(x["status"], x["error_class"]) for x in openai} == {("error", "quota_exhausted")}
    assert all(x["status"] == "success" for x in rows if x["platform"] != "openai")
    stats = (await env.sim.stats())["platforms"]["openai"]
    assert stats["fault:429"] <= 2  # no call after the first long hint but those already on the wire
    # resumable: once the quota is back, a rerun of openai finishes the batch
    env.sim.set_config(dataclasses.replace(env.sim.config, fault_retry_after_s=0.05))
    await env.store.fetchone(
        "UPDATE prompt_tracking SET prompt_text = replace(prompt_text, ' [[sim:openai:fault=429]]', '') "
        "RETURNING 1")
    r2 = await env.analyze("rerun", "quota", "--platform", "openai", "--json")
    assert r2.code == 0, r2.stderr[-2000:]


async def test_rerun_of_one_platform_reports_the_whole_batch(env: Env) -> None:
    await env.add_prompts(["a [[sim:openai:fault=400]]", "b [[sim:gemini:fault=500x3]]", "c"])
    r = await env.analyze("run", "--key", "whole", "--json")
    assert r.code == 1
    r2 = await env.analyze("rerun", "whole", "--platform", "gemini", "--json")
    assert r2.json()["platforms"]["gemini"]["error"] == 0
    # openai still has its error: the batch is not completed
    assert r2.json()["status"] == "completed_with_errors"
    assert r2.code == 1


async def test_resume_without_a_platforms_key_does_not_complete_the_batch(env: Env) -> None:
    await env.add_prompts(["one", "two"])
    await env.store.create_batch(key="nokey", trigger="manual", platforms=list(PLATFORMS),
                                 project_ids=[PROJECT])
    r = await env.analyze("run", "--key", "nokey", "--json", ANTHROPIC_API_KEY="")
    assert "claude" in r.stderr
    assert r.json()["status"] != "completed"
    assert r.code == 1


async def test_calls_waiting_for_their_slot_are_released_when_the_breaker_opens(env: Env) -> None:
    """At 6 rpm the pacer spaces calls 10 s apart: once the first 401 opens the breaker, the calls queued
    behind it must leave the queue at once, not each after its slot (which would take 40 s here)."""
    key = env.env()["OPENAI_API_KEY"]
    env.sim.set_config(env.sim.config.with_platform("openai", invalid_keys=(key,)))
    env.write_config(platform_config(openai={"rpm": 6, "max_concurrency": 5}))
    await env.add_prompts([f"slot {i}" for i in range(5)])
    t0 = time.monotonic()
    r = await env.analyze("run", "--key", "slots", "--json", timeout=60)
    took = time.monotonic() - t0
    assert r.code == 1, r.stderr[-2000:]
    assert took < 25, f"the run took {took:.1f} s: queued calls waited for their slots after the breaker opened"
    assert (await env.sim.stats())["platforms"]["openai"]["401"] == 1
