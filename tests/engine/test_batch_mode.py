"""`analyze run --mode batch` end to end: real `analyze` processes, the official SDKs over real HTTP
against the simulator's batch APIs, a real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from prompt_analyzer.config import PlatformSettings
from prompt_analyzer.providers import anthropic_messages, gemini_generate, openai_responses
from prompt_analyzer.providers.pricing import compute_cost, price_for
from prompt_analyzer.simulator import prompt_hash

from ..harness import Env, Result, platform_config

LOAD_TIMEOUT_S = 300  # a batch-mode run is a few seconds; a loaded 2-core machine can make it minutes


async def _analyze(env: Env, *args: str) -> Result:
    return await env.analyze(*args, timeout=LOAD_TIMEOUT_S)

BATCH_RUN = """
batch_poll_max_s = 0.2
"""

# The columns a live answer fills; a batch answer must fill the same ones.
FILLED = ("model_version", "response_text", "tokens_used", "input_tokens", "output_tokens", "cost",
          "execution_time_ms", "prompt_text")


# platform -> (provider_batches.provider, the provider's batch id prefix)
PROVIDERS = {"openai": ("openai", "batch_"), "claude": ("anthropic", "msgbatch_"), "gemini": ("gemini", "batches/")}


PARSERS = {"openai": openai_responses.parse, "claude": anthropic_messages.parse, "gemini": gemini_generate.parse}


def batch_config(env: Env, **per_platform: dict[str, Any]) -> None:
    env.write_config(BATCH_RUN + platform_config(**per_platform))


async def _stats(env: Env, platform: str) -> dict[str, int]:
    return dict((await env.sim.stats())["platforms"][platform])


async def _rows(env: Env, key: str, platform: str) -> list[dict[str, Any]]:
    return await env.store.fetchall(
        """SELECT r.*, p.prompt_text AS tracked_text FROM ai_responses r
           JOIN analysis_jobs j ON j.id = r.analysis_job_id JOIN analysis_batches b ON b.id = j.batch_id
           JOIN prompt_tracking p ON p.id = r.prompt_tracking_id
           WHERE b.idempotency_key = %s AND r.platform = %s ORDER BY p.prompt_text""",
        (key, platform),
    )


async def _citations(env: Env, response_id: Any) -> list[tuple[Any, ...]]:
    rows = await env.store.fetchall(
        "SELECT position, url, domain, title, cited, site FROM ai_response_citations WHERE ai_response_id = %s "
        "ORDER BY position", (response_id,))
    return [tuple(r.values()) for r in rows]


def _price(platform: str, model: str, *, batch: bool) -> Any:
    p = price_for(PlatformSettings(name=platform, model=model), batch=batch)
    assert p is not None
    return p


@pytest.mark.parametrize("platform", ["openai", "claude", "gemini"])
async def test_batch_rows_equal_live_rows_at_the_batch_price(env: Env, platform: str) -> None:
    batch_config(env)
    texts = [f"best crm for startups number {i}" for i in range(6)]
    await env.add_prompts(texts)
    live = await _analyze(env, "run", "--key", "live", "--platform", platform, "--json")
    assert live.code == 0, live.stderr
    r = await _analyze(env, "run", "--key", "batch", "--platform", platform, "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["status"] == "completed"
    assert out["platforms"][platform]["success"] == 6
    stats = await _stats(env, platform)
    assert stats["batch_creates"] == 1 and stats["batch_requests"] == 6
    live_rows, batch_rows = await _rows(env, "live", platform), await _rows(env, "batch", platform)
    assert len(live_rows) == len(batch_rows) == 6
    for lr, br in zip(live_rows, batch_rows, strict=True):
        assert br["status"] == "success" and br["attempts"] == 1 and br["error_class"] is None
        for col in FILLED:
            assert br[col] is not None, col
        # the same answer (the simulator answers a prompt the same way), the same tokens and sources
        assert (br["response_text"], br["model_version"], br["input_tokens"], br["output_tokens"]) == (
            lr["response_text"], lr["model_version"], lr["input_tokens"], lr["output_tokens"])
        assert await _citations(env, br["id"]) == await _citations(env, lr["id"])
        # ... at the batch price: tokens at half price, the search fee in full
        searches = br["metadata"]["searches"]
        assert br["metadata"]["batch"] is True
        assert br["metadata"]["provider_batch"].startswith(PROVIDERS[platform][1])
        model = br["model_version"]
        want = compute_cost(_price(platform, model, batch=True), input_tokens=br["input_tokens"],
                            output_tokens=br["output_tokens"], searches=searches)
        assert br["cost"] == want
        live_cost = compute_cost(_price(platform, model, batch=False), input_tokens=lr["input_tokens"],
                                 output_tokens=lr["output_tokens"], searches=searches)
        assert lr["cost"] == live_cost and br["cost"] < lr["cost"]
        # the provider's body is kept, as live, and the live parser reads it again to the stored answer
        assert PARSERS[platform](br["metadata"]["raw"]).text == br["response_text"]
    pbs = await env.store.fetchall("SELECT * FROM provider_batches")
    assert len(pbs) == 1
    pb = pbs[0]
    assert (pb["platform"], pb["provider"], pb["state"], pb["request_count"]) == (
        platform, PROVIDERS[platform][0], "collected", 6)
    assert pb["provider_batch_id"] and pb["submitted_at"] and pb["collected_at"]
    answered = (await env.sim.stats())["answered"][platform]
    assert answered == {prompt_hash(t): 2 for t in texts}  # once live, once in the batch


async def test_failed_requests_follow_the_live_retry_policy_in_a_new_batch(env: Env) -> None:
    batch_config(env, openai={"max_attempts": 3})
    await env.add_prompts(["ok one", "flaky [[sim:openai:fault=500x1]]", "refused [[sim:openai:fault=400]]"])
    r = await _analyze(env, "run", "--key", "b", "--platform", "openai", "--mode", "batch", "--json")
    assert r.code == 1, r.stderr
    out = r.json()
    assert out["status"] == "completed_with_errors"
    assert (out["platforms"]["openai"]["success"], out["platforms"]["openai"]["error"]) == (2, 1)
    rows = {x["tracked_text"]: x for x in await _rows(env, "b", "openai")}
    assert rows["ok one"]["attempts"] == 1
    flaky = rows["flaky [[sim:openai:fault=500x1]]"]
    assert flaky["status"] == "success" and flaky["attempts"] == 2  # retried once, in round 2
    refused = rows["refused [[sim:openai:fault=400]]"]
    assert (refused["status"], refused["error_class"], refused["attempts"]) == ("error", "permanent", 1)
    pbs = await env.store.fetchall("SELECT round, request_count, state FROM provider_batches ORDER BY round")
    assert [(p["round"], p["request_count"], p["state"]) for p in pbs] == [(1, 3, "collected"), (2, 1, "collected")]
    assert (await _stats(env, "openai"))["batch_creates"] == 2


async def test_detach_then_collect(env: Env) -> None:
    batch_config(env)
    env.sim.set_config(replace(env.sim.config, batch_processing_s=3600.0))
    await env.add_prompts([f"detached prompt {i}" for i in range(4)])
    r = await _analyze(env, "run", "--key", "d", "--platform", "openai", "--mode", "batch", "--detach", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "submitted"
    batch = await env.store.fetchone("SELECT status FROM analysis_batches WHERE idempotency_key = 'd'")
    assert batch == {"status": "submitted"}
    rows = await _rows(env, "d", "openai")
    assert {x["status"] for x in rows} == {"processing"} and all(
        x["claimed_by"].startswith("provider-batch:") for x in rows)
    # collected too early: still at the provider, nothing changes
    early = await _analyze(env, "collect", "--key", "d", "--json")
    assert early.code == 0, early.stderr
    assert early.json()["status"] == "submitted"
    env.sim.set_config(replace(env.sim.config, batch_processing_s=0.5))
    # the next run with that key waits for it and collects it, submitting nothing new
    done = await _analyze(env, "run", "--key", "d", "--platform", "openai", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "completed"
    assert (await _stats(env, "openai"))["batch_creates"] == 1
    assert (await _stats(env, "openai")).get("requests", 0) == 0  # no live call was made
    assert {x["status"] for x in await _rows(env, "d", "openai")} == {"success"}


async def test_pairs_are_split_into_provider_batches_at_the_limit(env: Env) -> None:
    batch_config(env, claude={"batch_max_requests": 2})
    texts = [f"split prompt {i}" for i in range(5)]
    await env.add_prompts(texts)
    r = await _analyze(env, "run", "--key", "s", "--platform", "claude", "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    pbs = await env.store.fetchall("SELECT request_count, state FROM provider_batches ORDER BY request_count DESC")
    assert [(p["request_count"], p["state"]) for p in pbs] == [(2, "collected"), (2, "collected"), (1, "collected")]
    assert (await _stats(env, "claude"))["batch_creates"] == 3
    assert (await env.sim.stats())["answered"]["claude"] == {prompt_hash(t): 1 for t in texts}


async def test_platforms_without_a_batch_api_run_live_and_the_start_line_says_why(env: Env) -> None:
    batch_config(env, gemini={"batch": False})
    await env.add_prompts(["mixed modes one", "mixed modes two"])
    r = await _analyze(env, "run", "--key", "m", "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "completed"
    assert "perplexity: runs live (perplexity has no batch API)" in r.stderr
    assert "gemini: runs live (batch = false in its configuration)" in r.stderr
    sim = (await env.sim.stats())["platforms"]
    assert sim["perplexity"]["requests"] == 2 and sim["gemini"]["requests"] == 2  # live calls
    assert sim["openai"]["batch_requests"] == 2 and sim["claude"]["batch_requests"] == 2
    assert sim["openai"].get("requests", 0) == 0 and sim["claude"].get("requests", 0) == 0


async def test_near_the_deadline_a_failed_request_is_retried_live(env: Env) -> None:
    # the deadline is always "near": batch_live_retry_within_s exceeds batch_deadline_s
    env.write_config(BATCH_RUN + "batch_deadline_s = 3600\nbatch_live_retry_within_s = 7200\n" + platform_config())
    await env.add_prompts(["steady", "flaky once [[sim:openai:fault=503x1]]"])
    r = await _analyze(env, "run", "--key", "l", "--platform", "openai", "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "completed"
    stats = await _stats(env, "openai")
    assert (stats["batch_creates"], stats["batch_requests"], stats["requests"]) == (1, 2, 1)  # one live retry
    rows = {x["tracked_text"]: x for x in await _rows(env, "l", "openai")}
    flaky = rows["flaky once [[sim:openai:fault=503x1]]"]
    assert (flaky["status"], flaky["attempts"]) == ("success", 2)
    assert "batch" not in flaky["metadata"]  # answered live, at the live price
    assert rows["steady"]["metadata"]["batch"] is True


async def _batch_spent(env: Env, key: str, platform: str) -> float:
    return sum(float(x["cost"] or 0) for x in await _rows(env, key, platform))


async def test_a_budget_stops_the_submit_and_a_higher_one_resumes(env: Env) -> None:
    texts = [f"budget prompt number {i}" for i in range(20)]
    await env.add_prompts(texts)
    batch_config(env)
    full = await _analyze(env, "run", "--key", "unbounded", "--platform", "claude", "--mode", "batch", "--json")
    assert full.code == 0, full.stderr
    per_request = await _batch_spent(env, "unbounded", "claude") / len(texts)
    budget = round(per_request * 8.5, 6)  # room for about 8 of the 20 (each reserves 20% over its estimate)
    r = await _analyze(env, "run", "--key", "capped", "--platform", "claude", "--mode", "batch", "--json",
                       "--max-cost-usd", str(budget))
    assert r.code == 1, r.stderr
    assert r.json()["status"] == "completed_with_errors" and "max_cost_usd" in r.stderr
    rows = await _rows(env, "capped", "claude")
    answered = [x for x in rows if x["status"] == "success"]
    capped = [x for x in rows if x["error_class"] == "budget_exhausted"]
    assert len(answered) + len(capped) == len(texts)
    assert answered and capped and all(x["attempts"] == 0 for x in capped)
    spent = await _batch_spent(env, "capped", "claude")
    assert spent <= budget, (spent, budget)  # every submitted request's reservation fitted
    assert spent >= budget - 3 * per_request, (spent, budget)  # ... and the budget was used
    pbs = await env.store.fetchall("SELECT request_count FROM provider_batches ORDER BY created_at")
    assert [p["request_count"] for p in pbs][1:] == [len(answered)]  # only what fitted was submitted

    done = await _analyze(env, "run", "--key", "capped", "--platform", "claude", "--mode", "batch", "--json",
                          "--max-cost-usd", "100")
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "completed"
    assert {x["status"] for x in await _rows(env, "capped", "claude")} == {"success"}
    # each pair of the capped batch answered once: twice in all with the unbounded batch's
    assert (await env.sim.stats())["answered"]["claude"] == {prompt_hash(t): 2 for t in texts}
