"""`db migrate` through the CLI, 1 MB answers stored intact, JSON log lines, a platform without a key."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..harness import Env


async def test_db_migrate_twice(env: Env, make_database: Callable[[], str]) -> None:
    url = make_database()
    first = await env.analyze("db", "migrate", DATABASE_URL=url)
    assert first.code == 0 and "applied 0001_schema" in first.stdout, first.stderr
    second = await env.analyze("db", "migrate", DATABASE_URL=url)
    assert second.code == 0 and "up to date" in second.stdout and "applied" not in second.stdout


async def test_one_megabyte_answer_is_stored_intact(env: Env) -> None:
    env.sim.set_config(env.sim.config.__class__.from_dict({**env.sim.config.to_dict(), "answer_bytes": 1_100_000}))
    await env.add_prompts(["a very long answer please"])
    r = await env.analyze("run", "--key", "big", "--platform", "openai", "--platform", "claude", "--json")
    assert r.code == 0, r.stderr
    rows = await env.rows()
    assert len(rows) == 2
    for row in rows:
        assert len(row["response_text"].encode()) >= 1_000_000
        assert row["status"] == "success"


async def test_json_logs_and_unconfigured_platform(env: Env) -> None:
    await env.add_prompts(["log me"])
    r = await env.analyze("--log-format", "json", "run", "--key", "logs", PERPLEXITY_API_KEY="")
    assert r.code == 0, r.stderr
    lines = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    warn = [x for x in lines if x["level"] == "warning" and "perplexity" in x["message"]]
    assert len(warn) == 1 and "not configured" in warn[0]["message"]
    assert {"time", "level", "event", "message", "platform", "batch"} <= set(warn[0])
    assert warn[0]["event"] == "platform_skipped" and warn[0]["platform"] == "perplexity"
