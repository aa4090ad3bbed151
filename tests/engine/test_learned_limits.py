"""Limits learned from the provider, in-flight limits and the daily quota, end to end: `analyze` as a
subprocess, the real SDKs over HTTP against the simulator stating its limits, a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from ..harness import Env, platform_config


def _limits(env_result: dict, name: str) -> dict:  # type: ignore[type-arg]
    return env_result["platforms"][name]["limits"]


async def test_auto_takes_the_stated_limits_a_configured_one_stays_a_bound(env: Env) -> None:
    cfg = env.sim.config.with_platform("openai", rpm=1200.0, tpm=1_000_000)
    cfg = cfg.with_platform("claude", rpm=600.0, input_tpm=500_000, output_tpm=100_000)
    env.sim.set_config(cfg)
    env.write_config(platform_config(
        openai={"rpm": "auto", "tpm": "auto", "max_concurrency": "auto"},
        claude={"rpm": 300, "tpm": "auto", "max_concurrency": "auto"},
    ))
    await env.add_prompts([f"limits {i}" for i in range(6)])
    r = await env.analyze("run", "--key", "learn", "--json", timeout=120)
    assert r.code == 0, r.stderr[-2000:]
    s = await env.analyze("status", "learn", "--json")
    assert s.code == 0, s.stderr[-2000:]
    report = s.json()
    openai = _limits(report, "openai")
    assert openai["rpm"] == 1200 and openai["rpm_source"] == "stated"
    assert openai["tpm"] < 1_000_000 and openai["tpm_source"] == "stated"  # kept a little under
    assert openai["max_concurrency"] == "auto" and 4 <= openai["in_flight_limit"] <= 256
    claude = _limits(report, "claude")
    assert claude["rpm"] == 300 and claude["rpm_source"] == "configured"  # 600 stated: 300 is the bound
    assert claude["stated"]["rpm"] == 600
    assert 0 < claude["input_tpm"] <= 500_000 and 0 < claude["output_tpm"] <= 100_000
    assert "tpm" not in claude
    stats = (await env.sim.stats())["platforms"]
    assert stats["openai"]["429"] == 0 and stats["claude"]["429"] == 0
    assert stats["openai"]["models"] == 1  # the free probe before the first call
    text = await env.analyze("status", "learn")
    assert "1,200 rpm (stated)" in text.stdout and "in flight <=" in text.stdout


async def test_anthropic_output_token_limit_paces_the_calls(env: Env) -> None:
    # 100 output tokens a second and answers of ~150: sent at once, all but the first would be refused.
    env.sim.set_config(env.sim.config.with_platform("claude", rpm=60000.0, output_tpm=6000, input_tpm=600_000))
    env.write_config(platform_config(claude={"rpm": 60000, "tpm": "auto", "max_concurrency": "auto"}))
    await env.add_prompts([f"tokens {i}" for i in range(6)])
    r = await env.analyze("run", "--key", "otpm", "--platform", "claude", "--json", timeout=120)
    assert r.code == 0, r.stderr[-2000:]
    assert r.json()["platforms"]["claude"]["success"] == 6
    stats = (await env.sim.stats())["platforms"]["claude"]
    assert stats["429"] <= 1, stats  # one may slip through on timing; without the budget it would be 5


async def test_daily_quota_stops_the_platform_and_counts_across_runs(env: Env) -> None:
    env.write_config(platform_config(openai={"rpd": 5}))
    await env.add_prompts([f"daily {i}" for i in range(8)])
    r = await env.analyze("run", "--key", "day-1", "--platform", "openai", "--json")
    assert r.code == 1, r.stderr[-2000:]
    p = r.json()["platforms"]["openai"]
    assert (p["success"], p["error"]) == (5, 3)
    assert {e["class"] for e in p["top_errors"]} == {"quota_exhausted"}
    assert (await env.sim.stats())["platforms"]["openai"]["requests"] == 5
    today = datetime.now(UTC).date()
    assert await env.store.daily_usage("openai", today) == 5  # the unsent reservation was given back
    # A new batch the same day: nothing leaves, every pair waits for `analyze rerun` tomorrow.
    r2 = await env.analyze("run", "--key", "day-1b", "--platform", "openai", "--json")
    assert r2.code == 1, r2.stderr[-2000:]
    assert r2.json()["platforms"]["openai"]["error"] == 8
    assert (await env.sim.stats())["platforms"]["openai"]["requests"] == 5
    rows = [x for x in await env.rows() if x["platform"] == "openai" and x["status"] == "error"]
    assert rows and {x["error_class"] for x in rows} == {"quota_exhausted"} and all(x["attempts"] == 0 for x in rows)
