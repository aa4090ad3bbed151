"""Stops (SIGINT/SIGTERM) in every state: answers received are never lost, no row stays `processing`,
long waits (backoff, a provider's pause, the database) never hold a stop back."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from psycopg import sql

from prompt_analyzer.config import PLATFORMS
from prompt_analyzer.db import Store
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.db.embedded import EmbeddedPostgres
from prompt_analyzer.db.migrate import migrate

from ..harness import Env, platform_config
from .test_faults import check_invariants

pytestmark = pytest.mark.faults


async def _wait_until(cond: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def _count(env: Env, status: str) -> int:
    row = await env.store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = %s", (status,))
    return int(row["n"]) if row else 0


@dataclasses.dataclass
class OwnServer:
    server: EmbeddedPostgres
    url: str


@pytest.fixture
async def own_db(env: Env, server_home: Path) -> AsyncIterator[OwnServer]:
    """A PostgreSQL server this test may stop and start; `env` points at it."""
    server = EmbeddedPostgres(server_home)
    url = server.start()
    pool = await open_pool(resolve_target(url), max_size=4)
    async with pool.connection() as conn:
        await migrate(conn)
    shared = env.store
    env.db_url = url
    env.store = Store(pool)
    try:
        yield OwnServer(server, url)
    finally:
        await env.store.close()
        env.store = shared
        server.release()
        server.stop()


async def _reopen(env: Env, own: OwnServer) -> None:
    await asyncio.to_thread(own.server.start)
    await env.store.close()
    env.store = Store(await open_pool(resolve_target(own.url), max_size=4))


async def _finish(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, float]:  # noqa: ASYNC109
    t0 = time.monotonic()
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise AssertionError(f"analyze did not exit within {timeout} s") from None
    assert proc.returncode is not None
    return proc.returncode, err.decode(), time.monotonic() - t0


async def test_clean_stop_leaves_no_row_processing_and_resumes(env: Env) -> None:
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=3.0, latency_sigma=0.0))
    env.write_config(platform_config(**{p: {"max_concurrency": 4} for p in PLATFORMS}))
    env.config.write_text(env.config.read_text().replace("grace_period_s = 5", "grace_period_s = 0.3"))
    texts = [f"stop prompt {i}" for i in range(10)]
    await env.add_prompts(texts)
    proc = await env.start("run", "--key", "cs")
    try:
        await _wait_until(lambda: _processing_at_least(env, 8))
        proc.send_signal(signal.SIGTERM)
        code, err, _ = await _finish(proc, 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 143, err[-2000:]
    assert await _count(env, "processing") == 0
    stopped = await env.store.fetchall("SELECT error_class FROM ai_responses WHERE status = 'error'")
    assert stopped and {r["error_class"] for r in stopped} == {"interrupted"}
    batch = await env.store.fetchone("SELECT status FROM analysis_batches WHERE idempotency_key = 'cs'")
    assert batch and batch["status"] == "interrupted"
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.0))
    r = await env.analyze("run", "--key", "cs", "--json")
    assert r.code == 0, r.stderr[-2000:]
    await check_invariants(env, texts)


async def _processing_at_least(env: Env, n: int) -> bool:
    return await _count(env, "processing") >= n


async def test_stop_during_a_long_backoff_is_prompt(env: Env) -> None:
    """A 429 asked for 60 s; SIGTERM during that wait ends the run at once, not after the grace period."""
    env.sim.set_config(dataclasses.replace(env.sim.config, fault_retry_after_s=60.0))
    env.write_config(platform_config())
    env.config.write_text(env.config.read_text().replace("grace_period_s = 5", "grace_period_s = 40"))
    await env.add_prompts([f"wait [[sim:fault=429x1]] {i}" for i in range(4)])
    proc = await env.start("run", "--key", "bo")
    try:
        await _wait_until(lambda: _rate_limited_seen(env))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, err, _ = await _finish(proc, 60)
        took = time.monotonic() - t0
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 143, err[-2000:]
    assert took < 10, f"SIGTERM took {took:.1f} s to stop a run waiting on a 60 s backoff"
    assert await _count(env, "processing") == 0


async def _rate_limited_seen(env: Env) -> bool:
    stats = await env.sim.stats()
    return sum(stats["platforms"].get(p, {}).get("fault:429", 0) for p in PLATFORMS) >= 4


async def test_stop_while_database_is_down_keeps_every_answer(env: Env, own_db: OwnServer) -> None:
    """The database dies under calls in flight, then SIGTERM: the answers that arrive during the grace
    period cannot be written; they must go to the spool, and the next run must not ask them again."""
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=1.0, latency_sigma=0.0))
    env.write_config(platform_config(**{p: {"max_concurrency": 3} for p in PLATFORMS}))
    env.config.write_text(env.config.read_text().replace("grace_period_s = 5", "grace_period_s = 2.5")
                          .replace("db_retry_s = 5", "db_retry_s = 30"))
    texts = [f"down stop {i}" for i in range(12)]
    await env.add_prompts(texts)
    proc = await env.start("run", "--key", "ds")
    try:
        await _wait_until(lambda: _processing_at_least(env, 12))
        assert await asyncio.to_thread(own_db.server.stop, "immediate")
        await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        code, err, took = await _finish(proc, 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code in (75, 143), err[-2000:]
    # every call in flight at the signal finished within the grace period (1 s < 2.5 s): each was received
    await _reopen(env, own_db)
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.0))
    r = await env.analyze("run", "--key", "ds", "--json")
    if r.code != 0:  # the first run may have ended `interrupted` or not at all recorded; rerun what is left
        r = await env.analyze("rerun", "ds", "--json")
    assert r.code == 0, r.stderr[-2000:]
    await check_invariants(env, texts)
    answered = (await env.sim.stats())["answered"]
    repeated = {p: sum(n - 1 for n in answered[p].values() if n > 1) for p in PLATFORMS}
    assert sum(repeated.values()) == 0, f"answers received before the stop were asked again: {repeated}"


async def test_prompt_concurrency_mode_exits_75_when_database_is_lost(env: Env, own_db: OwnServer) -> None:
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.3, latency_sigma=0.0))
    env.write_config(platform_config())
    env.config.write_text(env.config.read_text().replace("[run]", "[run]\nprompt_concurrency = 2")
                          .replace("db_retry_s = 5", "db_retry_s = 1"))
    await env.add_prompts([f"pc {i}" for i in range(40)])
    proc = await env.start("run", "--key", "pc")
    try:
        await _wait_until(lambda: _successes_at_least(env, 4))
        assert await asyncio.to_thread(own_db.server.stop, "immediate")
        code, err, took = await _finish(proc, 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 75, err[-2000:]
    assert took < 20, f"took {took:.1f} s to give up on the database with db_retry_s = 1"


async def _successes_at_least(env: Env, n: int) -> bool:
    return await _count(env, "success") >= n


async def test_a_database_turned_read_only_mid_run_spools_and_exits_75(env: Env, own_db: OwnServer) -> None:
    """After a failover a database may refuse writes (read-only) without refusing connections: the run
    retries for db_retry_s, keeps the answers it holds in the spool and exits 75; the next run writes them
    and asks none of them again."""
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.5, latency_sigma=0.0))
    env.write_config(platform_config(**{p: {"max_concurrency": 3} for p in PLATFORMS}))
    env.config.write_text(env.config.read_text().replace("db_retry_s = 5", "db_retry_s = 2"))
    texts = [f"read-only {i}" for i in range(20)]
    await env.add_prompts(texts)
    proc = await env.start("run", "--key", "ro")
    try:
        await _wait_until(lambda: _successes_at_least(env, 8))
        await env.store.fetchone(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND %s",
            (await _read_only(env, True),))
        code, err, took = await _finish(proc, 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 75, err[-2000:]
    assert "read-only" in err and "kept in" in err, err[-2000:]
    await _read_only(env, False)
    for p in PLATFORMS:
        env.sim.set_config(env.sim.config.with_platform(p, latency_mean_s=0.0))
    r = await env.analyze("run", "--key", "ro", "--json")
    assert r.code == 0, r.stderr[-2000:]
    await check_invariants(env, texts)
    answered = (await env.sim.stats())["answered"]
    assert sum(n - 1 for p in PLATFORMS for n in answered[p].values() if n > 1) == 0


async def _read_only(env: Env, on: bool) -> bool:
    """Make the database refuse writes from new sessions (as a standby or a full Supabase disk does)."""
    row = await env.store.fetchone("SELECT current_database() AS db")
    assert row
    setting = "on" if on else "off"
    async with env.store.pool.connection() as conn:
        await conn.set_autocommit(True)
        await conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
            sql.Identifier(row["db"]), sql.SQL(setting)))
        await conn.set_autocommit(False)
    return True


async def test_a_stop_while_gemini_sources_resolve_keeps_the_paid_answer(env: Env) -> None:
    """The answer is paid once it arrives; resolving its grounding redirects (here one link that hangs
    until its 3 s timeout) must not be where a stop loses it: it is kept, and the next run writes it
    without asking again."""
    env.write_config(platform_config())
    env.config.write_text(env.config.read_text().replace("grace_period_s = 5", "grace_period_s = 0.3"))
    text = "best crm for a bakery [[sim:redirect=hang]]"
    await env.add_prompts([text])
    proc = await env.start("run", "--key", "rs", "--platform", "gemini")
    try:
        await _wait_until(lambda: _hanging_redirect(env))
        proc.send_signal(signal.SIGTERM)  # the grace period (0.3 s) ends before the link's timeout (3 s)
        code, err, _ = await _finish(proc, 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 143, err[-2000:]
    assert await _count(env, "processing") == 0
    r = await env.analyze("run", "--key", "rs", "--platform", "gemini", "--json")
    assert r.code == 0, r.stderr[-2000:]
    rows = await env.rows()
    assert [(x["status"], x["platform"]) for x in rows] == [("success", "gemini")]
    stats = await env.sim.stats()
    assert list(stats["answered"]["gemini"].values()) == [1], "the answer was paid for twice"


async def _hanging_redirect(env: Env) -> bool:
    stats = await env.sim.stats()
    return stats["platforms"].get("gemini", {}).get("redirect:hang", 0) >= 1
