"""`analyze doctor`: configuration, database, row level security and each platform's key, through the
real SDKs against the simulator's models lists; exit 0 when all is well, 1 with one line per problem."""

from __future__ import annotations

import psycopg

from ..harness import Env, platform_config


def _stating(env: Env) -> None:
    cfg = env.sim.config.with_platform("openai", rpm=5000.0, tpm=2_000_000)
    env.sim.set_config(cfg.with_platform("claude", rpm=4000.0, input_tpm=400_000, output_tpm=80_000))


async def test_all_well(env: Env) -> None:
    _stating(env)
    r = await env.analyze("doctor", "--json")
    assert r.code == 0, r.stdout + r.stderr[-2000:]
    report = r.json()
    assert report["ok"] is True and report["problems"] == []
    assert {c["check"] for c in report["checks"]} >= {"config", "database", "rls", "openai", "claude", "gemini",
                                                      "perplexity"}
    p = report["platforms"]
    assert all(p[n]["ok"] and p[n]["model_listed"] for n in ("openai", "claude", "gemini", "perplexity"))
    assert p["openai"]["limits"]["rpm"] == 5000 and p["claude"]["limits"]["output_tpm"] == 80_000
    assert p["gemini"]["limits"] is None  # Gemini states nothing outside a 429
    stats = (await env.sim.stats())["platforms"]
    assert all(stats[n]["requests"] == 0 for n in ("openai", "claude", "gemini", "perplexity"))  # nothing paid
    text = await env.analyze("doctor")
    assert text.code == 0 and "limits stated: 5,000 rpm, 2,000,000 tpm" in text.stdout


async def test_each_problem_is_one_line_saying_what_to_do(env: Env) -> None:
    key = env.env()["ANTHROPIC_API_KEY"]
    env.sim.set_config(env.sim.config.with_platform("claude", invalid_keys=(key,)))
    r = await env.analyze("doctor", PERPLEXITY_BASE_URL="http://127.0.0.1:9/perplexity", GEMINI_API_KEY="")
    assert r.code == 1, r.stdout + r.stderr[-2000:]
    problems = [line for line in r.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 3, r.stdout
    claude = next(line for line in problems if "claude:" in line)
    assert "check ANTHROPIC_API_KEY" in claude and key not in r.stdout
    assert any("gemini: no API key: set GOOGLE_API_KEY or GEMINI_API_KEY" in line for line in problems)
    assert any("perplexity:" in line and "base URL" in line for line in problems)
    assert any(line.startswith("ok") and "openai:" in line for line in r.stdout.splitlines())


async def test_database_problems(env: Env) -> None:
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE prompt_tracking DISABLE ROW LEVEL SECURITY")
    try:
        r = await env.analyze("doctor", "--json")
    finally:
        with psycopg.connect(env.db_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE prompt_tracking ENABLE ROW LEVEL SECURITY")
    assert r.code == 1
    assert [p for p in r.json()["problems"] if p.startswith("rls:")] == [
        "rls: row level security is off on prompt_tracking: run `analyze db migrate`, "
        "or ALTER TABLE ... ENABLE ROW LEVEL SECURITY"]
    down = await env.analyze("doctor", "--json", DATABASE_URL="postgresql://postgres@127.0.0.1:9/nothing")
    assert down.code == 1
    assert any(p.startswith("database:") and "DATABASE_URL" in p for p in down.json()["problems"])


async def test_a_bad_config_is_a_problem_not_a_crash(env: Env) -> None:
    env.write_config(platform_config(openai={"rpm": "fast"}))
    r = await env.analyze("doctor")
    assert r.code == 1
    assert r.stdout.strip().startswith("PROBLEM  config: platforms.openai.rpm: must be \"auto\" or a positive number")
