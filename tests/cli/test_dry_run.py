"""`analyze run --dry-run`: the plain table, the contract's JSON, the budget's verdict, bad budgets."""

from __future__ import annotations

from prompt_analyzer.config import PLATFORMS

from ..harness import Env
from .helpers import analyze, one_line_error


async def test_plain_and_json_output(env: Env) -> None:
    await env.add_prompts([f"dry run prompt {i} about accounting software" for i in range(5)])
    plain = await env.analyze("run", "--dry-run", "--key", "dry")
    assert plain.code == 0, plain.stderr[-2000:]
    out = plain.stdout
    for name in (*PLATFORMS, "total", "cost live", "cost batch"):
        assert name in out, out
    assert "(live)" in out  # perplexity has no batch API
    assert "default 5" in out  # no history yet: the defaults, and the table says so
    assert "dry run: nothing was called and nothing was written" in out
    assert "budget:" not in out  # no budget configured, no verdict

    js = await env.analyze("run", "--dry-run", "--json", "--key", "dry", "--platform", "openai",
                           "--platform", "claude")
    assert js.code == 0, js.stderr[-2000:]
    data = js.json()
    assert set(data["platforms"]) == {"openai", "claude"}
    for p in data["platforms"].values():
        assert p["calls"] == 5 and p["tokens"] > 0
        assert 0 < p["cost_batch_usd"] < p["cost_live_usd"]
    assert data["cost_live_usd"] == round(sum(p["cost_live_usd"] for p in data["platforms"].values()), 6)
    assert data["duration_s"] > 0 and data["batch_id"] is None and data["over_budget"] == []


async def test_the_budget_verdict(env: Env) -> None:
    await env.add_prompts([f"budget verdict {i}" for i in range(5)])
    small = await env.analyze("run", "--dry-run", "--key", "v", "--max-cost-usd", "0.01")
    assert small.code == 0, small.stderr[-2000:]
    assert "the budget would stop the run (run)" in small.stdout
    big = await env.analyze("run", "--dry-run", "--json", "--key", "v", "--max-cost-usd", "1000")
    assert big.json()["over_budget"] == [] and big.json()["max_cost_usd"] == 1000.0
    env.config.write_text(env.config.read_text().replace("[platforms.claude]\n",
                                                         "[platforms.claude]\nmax_cost_usd = 0.001\n"))
    own = await env.analyze("run", "--dry-run", "--json", "--key", "v")
    assert own.code == 0, own.stderr[-2000:]
    assert own.json()["over_budget"] == ["claude"]


def test_a_bad_budget_option_is_one_line() -> None:
    one_line_error(analyze("run", "--dry-run", "--max-cost-usd", "-1"), 2,
                   "--max-cost-usd must be a non-negative number")
    one_line_error(analyze("rerun", "--last", "--max-cost-usd", "lots"), 2, "--max-cost-usd must be a number")
