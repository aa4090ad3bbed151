"""Fault injection: real `analyze` subprocesses, real PostgreSQL, the simulator; then the rows are checked.

The promise checked after every case: no succeeded answer lost, no duplicate row, nothing left
`processing` after recovery, no succeeded pair called again (only calls in flight at a kill may repeat).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from prompt_analyzer.config import PLATFORMS
from prompt_analyzer.db.embedded import EmbeddedPostgres
from prompt_analyzer.simulator import prompt_hash

from ..harness import Env, platform_config

pytestmark = pytest.mark.faults


async def check_invariants(env: Env, texts: list[str], platforms: tuple[str, ...] = PLATFORMS) -> None:
    rows = await env.rows()
    pairs = Counter((r["analysis_job_id"], r["platform"]) for r in rows)
    assert all(n == 1 for n in pairs.values()), "duplicate (job, platform) rows"
    assert not [r for r in rows if r["status"] == "processing"], "rows left processing"
    ok = {(r["tracked_text"], r["platform"]) for r in rows if r["status"] == "success"}
    assert ok == {(t, p) for t in texts for p in platforms}
    jobs = await env.store.fetchall(
        """SELECT j.status, j.completed_platforms, j.failed_platforms,
                  (SELECT count(*) FROM ai_responses r WHERE r.analysis_job_id = j.id AND r.status = 'success') AS ok
           FROM analysis_jobs j""")
    assert all(j["completed_platforms"] == j["ok"] and j["status"] == "completed" for j in jobs)


async def test_kill9_at_random_moments_then_resume(env: Env) -> None:
    """kill -9 at 10 seeded random moments; each resume reclaims and finishes; few calls repeat."""
    rng = random.Random(20261130)
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.15, latency_sigma=0.3))
    env.write_config(platform_config(**{p: {"max_concurrency": 4} for p in PLATFORMS}))
    texts = [f"kill test prompt {i}" for i in range(100)]
    await env.add_prompts(texts)
    in_flight_at_kills = 0
    kills = 0
    async def successes() -> int:
        row = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = 'success'")
        return int(row["n"]) if row else 0

    for _ in range(10):
        before = await successes()
        proc = await env.start("run", "--key", "k9")
        # a random moment once the run is calling (interpreter start-up is not what we test)
        while await successes() == before and proc.returncode is None:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.0, 0.6))
        if proc.returncode is not None:
            break
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        kills += 1
        n = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = 'processing'")
        in_flight_at_kills += n["n"] if n else 0
    t0 = time.monotonic()
    final = await env.analyze("run", "--key", "k9", "--json", timeout=120)
    recover_s = time.monotonic() - t0
    assert final.code == 0, final.stderr
    assert kills >= 5
    assert in_flight_at_kills > 0  # the kills did land on calls in flight
    await check_invariants(env, texts)
    answered = (await env.sim.stats())["answered"]
    repeated = sum(n - 1 for p in PLATFORMS for n in answered[p].values() if n > 1)
    # Only calls in flight at a kill may have been paid twice.
    assert repeated <= in_flight_at_kills
    print(f"FIGURE kill9: kills={kills} pairs={len(texts) * 4} in_flight_at_kills={in_flight_at_kills} "
          f"answers_repeated={repeated} final_run_s={recover_s:.1f}")
    attempts = await env.store.fetchone("SELECT sum(attempts) AS a, count(*) AS n FROM ai_responses")
    assert attempts and attempts["a"] >= attempts["n"]


async def test_provider_faults_each_kind(env: Env) -> None:
    """Reset, hang past the timeout, 429 storm, 5xx burst, malformed 200 and 'failed' 200: retried to success."""
    env.write_config(platform_config(**{p: {"timeout_s": 1, "max_attempts": 4} for p in PLATFORMS}))
    texts = ["reset [[sim:fault=resetx1]]", "hang [[sim:fault=hangx1]]", "storm [[sim:fault=429x3]]",
             "burst [[sim:fault=503x2]]", "malformed [[sim:fault=malformedx1]]",
             "failed [[sim:openai:fault=failedx1]] [[sim:perplexity:fault=failedx1]]",
             "plain"]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "pf", "--json", timeout=120)
    assert r.code == 0, r.stderr
    await check_invariants(env, texts)
    rows = {(x["tracked_text"], x["platform"]): x for x in await env.rows()}
    for p in PLATFORMS:
        assert rows[("storm [[sim:fault=429x3]]", p)]["attempts"] == 4
        assert rows[("hang [[sim:fault=hangx1]]", p)]["attempts"] == 2
        assert rows[("plain", p)]["attempts"] == 1
    answered = (await env.sim.stats())["answered"]
    assert all(n == 1 for p in PLATFORMS for n in answered[p].values())


async def test_permanent_errors_are_not_retried(env: Env) -> None:
    texts = ["bad request [[sim:openai:fault=400]]", "fine"]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "perm", "--json")
    assert r.code == 1
    row = [x for x in await env.rows() if x["tracked_text"].startswith("bad") and x["platform"] == "openai"][0]
    assert (row["status"], row["attempts"], row["error_class"]) == ("error", 1, "permanent")


async def test_database_outage_mid_run(env: Env, server_home: Path) -> None:
    """PostgreSQL (a server this test owns) stops mid-run and comes back: the run rides it out."""
    server = EmbeddedPostgres(server_home)
    url = server.start()
    try:
        env.db_url = url
        from prompt_analyzer.db import Store
        from prompt_analyzer.db.connect import open_pool, resolve_target
        from prompt_analyzer.db.migrate import migrate

        pool = await open_pool(resolve_target(url), max_size=4)
        async with pool.connection() as conn:
            await migrate(conn)
        env.store = Store(pool)
        for p in PLATFORMS:
            env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.1, latency_sigma=0.2))
        env.write_config(platform_config(**{p: {"max_concurrency": 4} for p in PLATFORMS})
                         .replace("[platforms.openai]", "[platforms.openai]", 1))
        env.config.write_text(env.config.read_text().replace("db_retry_s = 5", "db_retry_s = 30"))
        texts = [f"outage prompt {i}" for i in range(40)]
        await env.add_prompts(texts)
        await pool.close()
        proc = await env.start("run", "--key", "dbo", "--json")
        try:
            await asyncio.sleep(5.0)
            t0 = time.monotonic()
            assert await asyncio.to_thread(server.stop, "fast")
            await asyncio.sleep(3.0)
            await asyncio.to_thread(server.start)
            outage = time.monotonic() - t0
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-3000:]
        pool = await open_pool(resolve_target(url), max_size=4)
        env.store = Store(pool)
        await check_invariants(env, texts)
        assert outage >= 3.0
        print(f"FIGURE db_outage: outage_s={outage:.1f} exit={proc.returncode} pairs={len(texts) * 4}")
        await pool.close()
    finally:
        server.release()
        server.stop()


async def test_database_down_past_retry_spools_answers(env: Env, server_home: Path) -> None:
    """The database stays down: answers already received go to the spool, exit 75, the next run replays them."""
    server = EmbeddedPostgres(server_home)
    url = server.start()
    try:
        env.db_url = url
        from prompt_analyzer.db import Store
        from prompt_analyzer.db.connect import open_pool, resolve_target
        from prompt_analyzer.db.migrate import migrate

        pool = await open_pool(resolve_target(url), max_size=4)
        async with pool.connection() as conn:
            await migrate(conn)
        env.store = Store(pool)
        for p in PLATFORMS:
            env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=1.5, latency_sigma=0.1))
        env.write_config(platform_config(**{p: {"max_concurrency": 3} for p in PLATFORMS}))
        env.config.write_text(env.config.read_text().replace("db_retry_s = 5", "db_retry_s = 2"))
        texts = [f"spool prompt {i}" for i in range(12)]
        await env.add_prompts(texts)
        await pool.close()
        proc = await env.start("run", "--key", "spool", "--json")
        try:
            for _ in range(600):  # the interpreter's start-up is slow on a loaded machine
                await asyncio.sleep(0.1)
                if any(env.sim.state.answered[p] for p in PLATFORMS):
                    break
            assert any(env.sim.state.answered[p] for p in PLATFORMS), "no answer within 60 s"
            # calls are in flight (1.5 s each): take the database away under them
            await asyncio.sleep(0.3)
            assert await asyncio.to_thread(server.stop, "immediate"), server.last_error
            t0 = time.monotonic()
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            gave_up_s = time.monotonic() - t0
        finally:
            if proc.returncode is None:  # never leave a run behind, whatever failed
                proc.kill()
                await proc.wait()
        assert proc.returncode == 75, err.decode()[-3000:]
        # every wait on the database is bounded by db_retry_s (2 s): the calls in flight (1.5 s) land,
        # their writes retry for 2 s, then the run ends
        assert gave_up_s < 15, f"the run took {gave_up_s:.1f} s to give up on the database"
        spool = env.home / "spool.jsonl"
        assert spool.exists(), err.decode()[-2000:]
        spooled = len(spool.read_text().splitlines())
        assert spooled >= 1 and "kept in" in err.decode()
        server.start()
        for p in PLATFORMS:
            env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.0))
        r = await env.analyze("run", "--key", "spool", "--json")
        assert r.code == 0, r.stderr
        assert not spool.exists()
        pool = await open_pool(resolve_target(url), max_size=4)
        env.store = Store(pool)
        await check_invariants(env, texts)
        replayed = await env.store.fetchone(
            "SELECT count(*) AS n FROM ai_responses WHERE metadata ? 'replayed_from_spool'")
        # An answer whose commit outcome was unknown when the connection died is spooled too; the replay
        # finds it already written and skips it.  Every spooled answer is in the database either way
        # (check_invariants), and none was asked again (below).
        assert replayed and 1 <= replayed["n"] <= spooled
        print(f"FIGURE spool: spooled={spooled} replayed={replayed['n']} exit_first_run=75")
        answered = (await env.sim.stats())["answered"]
        # spooled answers were not asked again
        assert sum(n for p in PLATFORMS for n in answered[p].values()) <= len(texts) * 4 + 12
        assert all(prompt_hash(t) in answered["openai"] for t in texts)
        await pool.close()
    finally:
        server.release()
        server.stop()
