"""The batch commands' CLI side: a platform without a key is skipped with one warning (here as a JSON log line)."""

from __future__ import annotations

import json

from ..harness import Env


async def test_json_logs_and_unconfigured_platform(env: Env) -> None:
    await env.add_prompts(["log me"])
    r = await env.analyze("--log-format", "json", "run", "--key", "logs", PERPLEXITY_API_KEY="")
    assert r.code == 0, r.stderr
    lines = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    warn = [x for x in lines if x["level"] == "warning" and "perplexity" in x["message"]]
    assert len(warn) == 1 and "not configured" in warn[0]["message"]
    assert {"time", "level", "event", "message", "platform", "batch"} <= set(warn[0])
    assert warn[0]["event"] == "platform_skipped" and warn[0]["platform"] == "perplexity"
