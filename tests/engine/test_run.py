"""`analyze run` / `rerun` / `prompt` / `status` end to end."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

from prompt_analyzer.config import PLATFORMS
from prompt_analyzer.simulator import prompt_hash

from ..harness import Env, platform_config


async def _answered(env: Env) -> dict[str, dict[str, int]]:
    return (await env.sim.stats())["answered"]


async def test_happy_path_all_platforms(env: Env) -> None:
    texts = [f"best crm for startups number {i}" for i in range(8)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "t1", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["status"] == "completed"
    assert {p: (v["success"], v["error"]) for p, v in out["platforms"].items()} == {p: (8, 0) for p in PLATFORMS}
    rows = await env.rows()
    assert len(rows) == 32 and {r["status"] for r in rows} == {"success"}
    assert all(r["attempts"] == 1 and r["tokens_used"] and r["cost"] is not None for r in rows)
    assert all(r["response_text"] and r["model_version"] and r["execution_time_ms"] is not None for r in rows)
    cites = await env.store.fetchall("SELECT count(*) AS n, bool_or(cited) AS c, count(site) AS sites "
                                     "FROM ai_response_citations")
    assert cites[0]["n"] > 32 and cites[0]["c"]
    assert cites[0]["sites"] == cites[0]["n"]  # every citation has its registrable domain
    jobs = await env.store.fetchall("SELECT status, completed_platforms, failed_platforms FROM analysis_jobs")
    assert {(j["status"], j["completed_platforms"], j["failed_platforms"]) for j in jobs} == {("completed", 4, 0)}
    answered = await _answered(env)
    assert all(answered[p] == {prompt_hash(t): 1 for t in texts} for p in PLATFORMS)
    # plain output (not a terminal): no control codes
    assert "\x1b[" not in r.stderr
    # the same key again: finished, not run again
    again = await env.analyze("run", "--key", "t1")
    assert again.code == 0 and "already finished" in again.stderr
    assert await _answered(env) == answered


async def test_failing_platform_is_isolated_and_rerun_calls_only_failures(env: Env) -> None:
    await env.add_prompts(["good one", "good two", "bad [[sim:gemini:fault=500x3]]"])
    r = await env.analyze("run", "--key", "t2", "--json")
    assert r.code == 1, r.stderr
    out = r.json()
    assert out["status"] == "completed_with_errors"
    assert out["platforms"]["gemini"]["error"] == 1 and out["platforms"]["gemini"]["success"] == 2
    for p in ("openai", "claude", "perplexity"):
        assert out["platforms"][p]["success"] == 3
    bad = [x for x in await env.rows() if x["platform"] == "gemini" and x["status"] == "error"]
    assert len(bad) == 1 and bad[0]["attempts"] == 3 and bad[0]["error_class"] == "transient"
    job = await env.store.fetchone("SELECT * FROM analysis_jobs WHERE id = %s", (bad[0]["analysis_job_id"],))
    assert job and (job["status"], job["completed_platforms"], job["failed_platforms"]) == ("completed", 3, 1)
    before = await _answered(env)
    r2 = await env.analyze("rerun", "--last", "--json")
    assert r2.code == 0, r2.stderr
    assert r2.json()["status"] == "completed"
    after = await _answered(env)
    # only the failed pair was called again (its 4th call succeeds); nothing else was asked twice
    h = prompt_hash("bad [[sim:gemini:fault=500x3]]")
    assert after["gemini"][h] == 1 and before["gemini"].get(h) is None
    assert {p: after[p] for p in ("openai", "claude", "perplexity")} == {
        p: before[p] for p in ("openai", "claude", "perplexity")}
    row = await env.store.fetchone("SELECT attempts, status, error_message FROM ai_responses WHERE id = %s",
                                   (bad[0]["id"],))
    assert row == {"attempts": 4, "status": "success", "error_message": None}


async def test_429_with_retry_hints_then_success(env: Env) -> None:
    await env.add_prompts(["limited [[sim:openai:fault=429x2]] [[sim:gemini:fault=429x1]]"])
    r = await env.analyze("run", "--key", "t3", "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["platforms"]["openai"]["run"]["rate_limited"] == 2
    assert out["platforms"]["gemini"]["run"]["rate_limited"] == 1
    rows = {x["platform"]: x for x in await env.rows()}
    assert rows["openai"]["attempts"] == 3 and rows["gemini"]["attempts"] == 2
    assert rows["openai"]["metadata"]["retried_errors"][0].startswith("rate_limited")


async def test_auth_failure_opens_the_breaker(env: Env) -> None:
    env.sim.set_config(env.sim.config.with_platform("claude", invalid_keys=("sk-ant-test-0000000000000000",)))
    await env.add_prompts([f"prompt {i}" for i in range(30)])
    r = await env.analyze("run", "--key", "t4", "--json")
    assert r.code == 1
    out = r.json()
    assert out["platforms"]["claude"]["error"] == 30 and out["platforms"]["openai"]["success"] == 30
    stats = await env.sim.stats()
    assert stats["platforms"]["claude"]["requests"] <= 20  # stopped calling after the first 401s
    classes = Counter(x["error_class"] for x in await env.rows() if x["platform"] == "claude")
    assert set(classes) <= {"auth", "circuit_open"} and classes["auth"] >= 1
    # the key the provider echoed back is nowhere: not in rows, output or logs
    dump = str(await env.rows()) + r.stdout + r.stderr
    assert "sk-ant-test-0000000000000000" not in dump


async def test_prompt_concurrency_mode_matches_original_design(env: Env) -> None:
    env.write_config("[run]\n".join([""] * 1) + platform_config())
    env.config.write_text(env.config.read_text().replace("[run]", "[run]\nprompt_concurrency = 5", 1))
    await env.add_prompts([f"p{i}" for i in range(12)])
    r = await env.analyze("run", "--key", "t5", "--json")
    assert r.code == 0, r.stderr
    assert all(v["success"] == 12 for v in r.json()["platforms"].values())


async def test_prompt_command_and_status(env: Env) -> None:
    await env.add_prompts(["which password manager is best"])
    pid = (await env.store.fetchone("SELECT id FROM prompt_tracking"))["id"]  # type: ignore[index]
    r = await env.analyze("prompt", str(pid), "--platform", "openai", "--platform", "claude")
    assert r.code == 0, r.stderr
    assert "openai" in r.stdout and "claude" in r.stdout and "success" in r.stdout and "cited" in r.stdout
    s = await env.analyze("status", "--last", "--json")
    assert s.code == 0
    assert set(s.json()["platforms"]) == {"openai", "claude"}
    bad = await env.analyze("prompt", "not-a-uuid")
    assert bad.code == 2 and "not a UUID" in bad.stderr and "Traceback" not in bad.stderr


async def test_overlap_lock_and_sigterm_then_resume(env: Env) -> None:
    env.sim.set_config(env.sim.config.with_platform("perplexity", latency_mean_s=0.5, latency_sigma=0.1))
    # A long lease: a second process that waited for the first one's lease would take minutes.
    env.write_config(platform_config(perplexity={"max_concurrency": 1})
                     + "\n[coordination]\nworker_lease_s = 600\n")
    texts = [f"slow prompt {i}" for i in range(40)]
    await env.add_prompts(texts)
    first = await env.start("run", "--key", "t6", "--json")
    for _ in range(100):
        await asyncio.sleep(0.1)
        n = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE platform = 'perplexity'")
        if n and n["n"] >= 3:
            break
    t0 = time.monotonic()
    second = await env.analyze("run", "--key", "t6")
    assert second.code == 75 and "another process" in second.stderr
    # exits at once instead of waiting for the lease (the bound is the process's start-up under CI load,
    # about 1.5 s on a quiet machine and 10 s on a loaded one)
    assert time.monotonic() - t0 < 60
    first.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(first.communicate(), 15)
    assert first.returncode == 143, err.decode()[-2000:]
    batch = await env.store.fetchone("SELECT status FROM analysis_batches WHERE idempotency_key = 't6'")
    assert batch == {"status": "interrupted"}
    done_before = await _answered(env)
    resumed = await env.analyze("run", "--key", "t6", "--json")
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["platforms"]["perplexity"]["success"] == 40
    rows = await env.rows()
    assert len(rows) == 160 and {x["status"] for x in rows} == {"success"}
    answered = await _answered(env)
    for p in PLATFORMS:
        assert sum(answered[p].values()) == 40, p  # a clean stop loses nothing and repeats nothing
    assert done_before["perplexity"] != answered["perplexity"]


async def test_second_sigint_cuts_the_grace_period(env: Env) -> None:
    env.sim.set_config(env.sim.config.with_platform("claude", latency_mean_s=20.0, latency_sigma=0.01))
    env.write_config(platform_config())
    env.config.write_text(env.config.read_text().replace("grace_period_s = 5", "grace_period_s = 60"))
    await env.add_prompts([f"grace {i}" for i in range(3)])
    proc = await env.start("run", "--key", "grace")
    for _ in range(200):
        await asyncio.sleep(0.1)
        n = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE platform = 'claude'")
        if n and n["n"] >= 3:
            break
    proc.send_signal(signal.SIGINT)
    await asyncio.sleep(1.0)
    assert proc.returncode is None  # waiting for the calls in flight (20 s each, grace 60 s)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert time.monotonic() - t0 < 10
    rows = [r for r in await env.rows() if r["platform"] == "claude"]
    # no row says `processing` after a clean stop; `interrupted` pairs are claimed again by a resume
    assert rows and all((r["status"], r["error_class"], r["claimed_by"]) == ("error", "interrupted", None)
                        for r in rows)
