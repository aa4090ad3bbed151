"""Faults with several workers on one batch: a worker killed with `kill -9` mid-run, Redis lost mid-run.

The promise: the others finish the dead worker's pairs once its lease expires; nothing is lost, nothing
is duplicated, and the calls paid twice are at most that worker's calls in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter

import pytest

from prompt_analyzer.config import PLATFORMS

from ..harness import Env, platform_config
from .test_faults import check_invariants

pytestmark = pytest.mark.faults


async def _successes(env: Env) -> int:
    row = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = 'success'")
    return int(row["n"]) if row else 0


async def _until_successes(env: Env, n: int, proc: asyncio.subprocess.Process) -> None:
    while await _successes(env) < n:
        assert proc.returncode is None, "the run ended before the fault"
        await asyncio.sleep(0.05)


def _slow(env: Env, latency: float) -> None:
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=latency, latency_sigma=0.2))


async def test_kill9_of_one_worker_its_pairs_are_taken_over(env: Env) -> None:
    _slow(env, 0.2)
    env.write_config(platform_config(**{p: {"max_concurrency": 4} for p in PLATFORMS})
                     + "\n[coordination]\nworker_lease_s = 4\n")
    texts = [f"takeover prompt {i}" for i in range(80)]
    await env.add_prompts(texts)
    run = await env.start("run", "--key", "k9w", "--workers", "3", "--json")
    await _until_successes(env, 40, run)
    victim = await env.store.fetchone(
        "SELECT worker, pid FROM batch_workers WHERE role = 'worker' AND state = 'running' ORDER BY joined_at LIMIT 1")
    assert victim is not None
    os.kill(victim["pid"], signal.SIGKILL)
    await asyncio.sleep(0.3)  # a statement it had sent completes at the server; nothing else of it will
    row = await env.store.fetchone(
        "SELECT count(*) AS n FROM ai_responses WHERE status = 'processing' AND claimed_by = %s", (victim["worker"],))
    in_flight = int(row["n"]) if row else 0
    out, err = await asyncio.wait_for(run.communicate(), 240)
    assert run.returncode == 0, err.decode()[-3000:]
    assert json.loads(out)["status"] == "completed"
    await check_invariants(env, texts)
    answered = (await env.sim.stats())["answered"]
    repeated = sum(n - 1 for p in PLATFORMS for n in answered[p].values() if n > 1)
    assert repeated <= in_flight
    states = Counter(str(m["state"]) for m in await env.store.fetchall("SELECT state FROM batch_workers"))
    assert states == {"done": 3, "dead": 1}
    print(f"FIGURE kill9-worker: pairs={len(texts) * 4} killed_in_flight={in_flight} answers_repeated={repeated}")


async def test_redis_lost_mid_run_workers_fall_back_and_finish(
    env: Env, own_redis: tuple[asyncio.subprocess.Process, str],
) -> None:
    proc, url = own_redis
    _slow(env, 0.1)
    env.write_config(platform_config(**{p: {"max_concurrency": 4, "rpm": 6000} for p in PLATFORMS})
                     + f'\n[coordination]\nworker_lease_s = 10\nredis_url = "{url}"\n')
    texts = [f"redis lost prompt {i}" for i in range(60)]
    await env.add_prompts(texts)
    run = await env.start("run", "--key", "rl", "--workers", "2", "--json")
    await _until_successes(env, 30, run)
    proc.kill()
    await proc.wait()
    out, err = await asyncio.wait_for(run.communicate(), 240)
    assert run.returncode == 0, err.decode()[-3000:]
    assert json.loads(out)["status"] == "completed"
    await check_invariants(env, texts)
    stderr = err.decode()
    assert "Redis unreachable" in stderr and "takes 1/2 of each platform's limits" in stderr
    answered = (await env.sim.stats())["answered"]
    assert all(n == 1 for p in PLATFORMS for n in answered[p].values())
