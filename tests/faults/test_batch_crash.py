"""Batch mode under kill -9 and provider expiry: nothing is submitted twice, every pair is answered
once, and what a provider never processed stays resumable."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from prompt_analyzer.simulator import prompt_hash

from ..harness import Env, Result, platform_config

LOAD_TIMEOUT_S = 300  # a batch-mode run is a few seconds; a loaded 2-core machine can make it minutes


async def _analyze(env: Env, *args: str) -> Result:
    return await env.analyze(*args, timeout=LOAD_TIMEOUT_S)

pytestmark = pytest.mark.faults

RUN = """
batch_poll_max_s = 0.2
"""
PLATFORMS = ["openai", "claude", "gemini"]


async def _wait_until(cond: Callable[[], Awaitable[bool]], within: float = LOAD_TIMEOUT_S) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def _creates(env: Env, platform: str) -> int:
    return int((await env.sim.stats())["platforms"][platform].get("batch_creates", 0))


async def _pb_states(env: Env) -> list[str]:
    return [r["state"] for r in await env.store.fetchall("SELECT state FROM provider_batches ORDER BY created_at")]


def _sim(env: Env, **changes: float | None) -> None:
    env.sim.set_config(replace(env.sim.config, **changes))


async def _every_pair_once(env: Env, platform: str, texts: list[str]) -> None:
    rows = await env.rows()
    assert len(rows) == len(texts)
    assert {r["status"] for r in rows} == {"success"}
    assert all(r["attempts"] == 1 for r in rows)  # one request each, over both runs
    assert (await env.sim.stats())["answered"][platform] == {prompt_hash(t): 1 for t in texts}
    assert await _creates(env, platform) == 1  # submitted once, found again after the crash


async def _kill(env: Env) -> None:
    proc = env.procs[-1]
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_kill_between_submit_and_record_does_not_submit_twice(env: Env, platform: str) -> None:
    env.write_config(RUN + platform_config())
    texts = [f"crash between submit and record {i}" for i in range(5)]
    await env.add_prompts(texts)
    _sim(env, batch_create_delay_s=3600.0)  # the provider has the batch; its answer never arrives
    await env.start("run", "--key", "k", "--platform", platform, "--mode", "batch")

    async def created() -> bool:
        return await _creates(env, platform) == 1

    await _wait_until(created)
    assert await _pb_states(env) == ["submitting"]  # the intent was committed before the submit
    await _kill(env)
    _sim(env, batch_create_delay_s=0.0)
    r = await _analyze(env, "run", "--key", "k", "--platform", platform, "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "completed"
    assert "not submitting again" in r.stderr
    await _every_pair_once(env, platform, texts)
    assert await _pb_states(env) == ["collected"]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_kill_while_polling_then_resume_collects(env: Env, platform: str) -> None:
    env.write_config(RUN + platform_config())
    texts = [f"crash while polling {i}" for i in range(5)]
    await env.add_prompts(texts)
    _sim(env, batch_processing_s=3600.0)
    await env.start("run", "--key", "p", "--platform", platform, "--mode", "batch")

    async def polling() -> bool:
        return await _pb_states(env) == ["in_progress"]

    await _wait_until(polling)
    await _kill(env)
    rows = await env.rows()
    assert {r["status"] for r in rows} == {"processing"}  # held by the provider batch, not by the dead run
    _sim(env, batch_processing_s=0.0)
    r = await _analyze(env, "run", "--key", "p", "--platform", platform, "--mode", "batch", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["status"] == "completed"
    await _every_pair_once(env, platform, texts)


async def test_provider_expiry_leaves_pairs_resumable(env: Env) -> None:
    env.write_config(RUN + platform_config())
    texts = [f"expires at the provider {i}" for i in range(4)]
    await env.add_prompts(texts)
    _sim(env, batch_processing_s=3600.0, batch_expire_after_s=0.5)
    r = await _analyze(env, "run", "--key", "e", "--platform", "claude", "--mode", "batch", "--json")
    assert r.code == 1, r.stderr
    assert r.json()["status"] == "interrupted"
    assert "not answered" in r.stderr and "resumable" in r.stderr
    rows = await env.rows()
    assert {(x["status"], x["error_class"]) for x in rows} == {("error", "interrupted")}
    assert await _pb_states(env) == ["expired"]
    _sim(env, batch_processing_s=0.0, batch_expire_after_s=None)
    again = await _analyze(env, "run", "--key", "e", "--platform", "claude", "--mode", "batch", "--json")
    assert again.code == 0, again.stderr
    assert again.json()["status"] == "completed"
    assert {x["status"] for x in await env.rows()} == {"success"}
    assert (await env.sim.stats())["answered"]["claude"] == {prompt_hash(t): 1 for t in texts}
    assert await _creates(env, "claude") == 2
