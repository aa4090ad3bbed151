"""Several worker processes on one batch: real `analyze` processes, the real PostgreSQL, the simulator
over real HTTP, the real Redis.  Every pair is answered exactly once; the batch is finished once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from prompt_analyzer.config import PLATFORMS

from ..harness import Env, platform_config

REDIS_URL = os.environ.get("PROMPT_ANALYZER_TEST_REDIS", "redis://127.0.0.1:6379/0")

COORDINATION = "\n[coordination]\nworker_lease_s = 10\n"


def _config(env: Env, *, redis: bool = False, **per_platform: dict[str, object]) -> None:
    text = platform_config(**per_platform) + COORDINATION
    if redis:
        text += f'redis_url = "{REDIS_URL}"\n'
    env.write_config(text)


async def _slow(env: Env, latency: float) -> None:
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=latency, latency_sigma=0.2))


async def _exactly_once(env: Env, texts: list[str], platforms: tuple[str, ...] = PLATFORMS) -> None:
    rows = await env.rows()
    assert Counter((r["analysis_job_id"], r["platform"]) for r in rows).most_common(1)[0][1] == 1
    assert {(r["tracked_text"], r["platform"]) for r in rows if r["status"] == "success"} == {
        (t, p) for t in texts for p in platforms}
    assert all(r["attempts"] == 1 for r in rows)
    answered = (await env.sim.stats())["answered"]
    assert all(n == 1 for p in platforms for n in answered[p].values())
    assert sum(len(answered[p]) for p in platforms) == len(texts) * len(platforms)


@contextlib.asynccontextmanager
async def _claims_gated(env: Env, key: str) -> AsyncIterator[None]:
    """The batch of ``key`` created, and every claim held back (a SHARE lock on analysis_jobs, whose rows
    a claim updates) while the block runs: workers join, none calls yet."""
    await env.store.create_batch(key=key, trigger="manual", platforms=PLATFORMS)
    env.config.write_text(env.config.read_text().replace("db_retry_s = 5", "db_retry_s = 300"))
    conn = await psycopg.AsyncConnection.connect(env.db_url)
    try:
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE analysis_jobs IN SHARE MODE")
        yield
    finally:
        await conn.execute("ROLLBACK")
        await conn.close()


async def _until_members(env: Env, n: int, procs: list[asyncio.subprocess.Process]) -> None:
    while len(await _members(env)) < n:
        assert all(p.returncode is None for p in procs), "a process ended before joining"
        await asyncio.sleep(0.05)


async def _members(env: Env) -> list[dict[str, object]]:
    return await env.store.fetchall("SELECT role, state, calls, pid FROM batch_workers ORDER BY role, pid")


async def test_run_with_workers_finishes_the_batch_once(env: Env) -> None:
    await _slow(env, 0.02)
    _config(env, redis=True)
    texts = [f"workers prompt {i}" for i in range(40)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "w3", "--workers", "3", "--json", timeout=180)
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)  # exactly one summary: one JSON object
    assert report["status"] == "completed" and report["completed_jobs"] == 40
    await _exactly_once(env, texts)
    members = await _members(env)
    assert [m["role"] for m in members] == ["supervisor", "worker", "worker", "worker"]
    assert all(m["state"] == "done" for m in members)
    assert sum(int(m["calls"]) for m in members) == 160  # type: ignore[call-overload]
    batch = await env.store.fetchone("SELECT status, completed_at FROM analysis_batches")
    assert batch is not None and batch["status"] == "completed" and batch["completed_at"] is not None


async def test_workers_join_a_run_from_outside(env: Env) -> None:
    """`analyze run` and two `analyze worker` processes on one key: each pair once; the last to leave
    prints the one summary (with --json, the only JSON on any stdout)."""
    await _slow(env, 0.05)
    _config(env, **{p: {"max_concurrency": 4} for p in PLATFORMS})
    texts = [f"join prompt {i}" for i in range(40)]
    await env.add_prompts(texts)
    async with _claims_gated(env, "join"):
        procs = [await env.start("run", "--key", "join", "--json")]
        procs += [await env.start("worker", "--key", "join", "--json") for _ in range(2)]
        await _until_members(env, 3, procs)
    outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 180)
    codes = [p.returncode for p in procs]
    assert codes == [0, 0, 0], [e.decode()[-1500:] for _, e in outs]
    summaries = [json.loads(o) for o, _ in outs if o.strip()]
    assert len(summaries) == 1 and summaries[0]["status"] == "completed"
    await _exactly_once(env, texts)
    members = await _members(env)
    assert sorted(str(m["role"]) for m in members) == ["coordinator", "worker", "worker"]
    assert all(m["state"] == "done" for m in members)


async def test_worker_on_a_finished_batch_exits_at_once(env: Env) -> None:
    await env.add_prompts(["one prompt"])
    first = await env.analyze("run", "--key", "done")
    assert first.code == 0, first.stderr
    before = (await env.sim.stats())["platforms"]
    r = await env.analyze("worker", "--key", "done")
    assert r.code == 0 and "has finished (completed); nothing to do" in r.stderr
    assert (await env.sim.stats())["platforms"] == before
    bad = await env.analyze("worker", "done", "--key", "done")
    assert bad.code == 2 and "not both" in bad.stderr
    missing = await env.analyze("worker", "--key", "no-such-batch")  # not started yet: a service retries
    assert missing.code == 75 and "no batch 'no-such-batch' yet" in missing.stderr


async def test_second_run_on_a_batch_with_workers_exits_75(env: Env) -> None:
    await env.add_prompts([f"busy prompt {i}" for i in range(10)])
    async with _claims_gated(env, "busy"):
        run = await env.start("run", "--key", "busy", "--workers", "2")
        await _until_members(env, 3, [run])
        second = await env.analyze("run", "--key", "busy")
        assert second.code == 75 and "another process" in second.stderr and "analyze worker" in second.stderr
    await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 0


async def test_sigterm_stops_every_worker_cleanly_then_resume(env: Env) -> None:
    await _slow(env, 0.5)
    _config(env, **{p: {"max_concurrency": 2} for p in PLATFORMS})
    texts = [f"term prompt {i}" for i in range(60)]
    await env.add_prompts(texts)
    run = await env.start("run", "--key", "term", "--workers", "2", "--json")
    while True:
        n = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = 'success'")
        if n and n["n"] >= 10:
            break
        assert run.returncode is None
        await asyncio.sleep(0.05)
    pids = [int(m["pid"]) for m in await _members(env) if m["role"] == "worker"]  # type: ignore[call-overload]
    assert len(pids) == 2
    run.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 143, err.decode()[-2000:]
    assert json.loads(out)["status"] == "interrupted"
    for pid in pids:  # every worker has exited (none left behind)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not await env.store.fetchone("SELECT 1 FROM ai_responses WHERE status = 'processing'")
    members = await _members(env)
    assert all(m["state"] == "stopped" for m in members)
    t0 = time.monotonic()
    again = await env.analyze("run", "--key", "term", "--workers", "2", "--json", timeout=180)
    assert again.code == 0, again.stderr
    assert time.monotonic() - t0 > 0
    await _exactly_once_answered(env, texts)


async def _exactly_once_answered(env: Env, texts: list[str]) -> None:
    """After a clean stop and a resume: every pair succeeded once, and no answer was paid twice."""
    rows = await env.rows()
    assert {(r["tracked_text"], r["platform"]) for r in rows if r["status"] == "success"} == {
        (t, p) for t in texts for p in PLATFORMS}
    assert len(rows) == len(texts) * len(PLATFORMS)
    answered = (await env.sim.stats())["answered"]
    assert all(n == 1 for p in PLATFORMS for n in answered[p].values())


async def test_shared_limit_holds_across_worker_processes(env: Env) -> None:
    """The simulated openai allows 600 rpm (a bucket of one second's worth).  Three workers configured
    at 600 rpm share it through Redis: almost no 429 (each worker on its own would send three times
    the rate and be refused about two calls in three)."""
    env.sim.set_config(env.sim.config.with_platform("openai", rpm=600.0))
    _config(env, redis=True, openai={"rpm": 600, "max_concurrency": 20})
    texts = [f"limit prompt {i}" for i in range(60)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "lim", "--workers", "3", "--platform", "openai", "--json", timeout=180)
    assert r.code == 0, r.stderr
    stats = (await env.sim.stats())["platforms"]["openai"]
    assert stats["ok"] == 60, r.stderr[-3000:]  # no call made twice
    assert stats["429"] <= stats["requests"] * 0.2, stats  # 3 x 600 rpm unshared: about 2 in 3 refused


async def test_a_stop_while_the_workers_start_reaches_every_worker(env: Env) -> None:
    """SIGINT while `run --workers 2` is still starting its workers (the fork server importing): no worker
    starts after the stop without it, so the run ends at once, not after the grace period and a kill."""
    await _slow(env, 0.5)
    _config(env, **{p: {"max_concurrency": 2} for p in PLATFORMS})
    texts = [f"early stop prompt {i}" for i in range(60)]
    await env.add_prompts(texts)
    run = await env.start("run", "--key", "early", "--workers", "2", "--json")
    while not await env.store.fetchone("SELECT 1 FROM analysis_batches WHERE idempotency_key = 'early'"):
        assert run.returncode is None
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # the parent is starting the fork server, or the first worker
    run.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 130, err.decode()[-2000:]
    members = await _members(env)
    for m in members:  # every worker that started has exited, and none is still on the batch
        with pytest.raises(ProcessLookupError):
            os.kill(int(m["pid"]), 0)  # type: ignore[call-overload]
        assert m["state"] != "running"
    assert not await env.store.fetchone("SELECT 1 FROM ai_responses WHERE status = 'processing'")
    answered = (await env.sim.stats())["answered"]
    assert sum(len(a) for a in answered.values()) <= 8, err.decode()[-3000:]  # the calls in flight at the stop


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc: the test extras do not carry psutil)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
    return out


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_workers_outlive_their_fork_server_and_still_stop(env: Env) -> None:
    """The fork server the workers came from dies (a signal to the process group, the OOM killer): the
    parent still follows its workers, waits for them and passes a stop on to them."""
    await _slow(env, 0.5)
    _config(env, **{p: {"max_concurrency": 2} for p in PLATFORMS})
    texts = [f"orphan prompt {i}" for i in range(60)]
    await env.add_prompts(texts)
    run = await env.start("run", "--key", "orphan", "--workers", "2", "--json")
    while len([m for m in await _members(env) if m["role"] == "worker"]) < 2:
        assert run.returncode is None
        await asyncio.sleep(0.05)
    workers = {int(m["pid"]) for m in await _members(env) if m["role"] == "worker"}  # type: ignore[call-overload]
    servers = [c for c in _children(run.pid) if c not in workers and set(_children(c)) & workers]
    assert len(servers) == 1, "the workers' parent is the run's fork server"
    os.kill(servers[0], signal.SIGKILL)
    await asyncio.sleep(1.0)
    assert run.returncode is None  # still waiting for its workers, which go on
    run.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 143, err.decode()[-2000:]
    assert json.loads(out)["status"] == "interrupted"
    assert not [pid for pid in workers if _running(pid)]  # exited (a zombie at most: their reaper is gone)
    assert all(m["state"] == "stopped" for m in await _members(env) if m["role"] == "worker")
    assert not await env.store.fetchone("SELECT 1 FROM ai_responses WHERE status = 'processing'")
