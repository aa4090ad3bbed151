"""Worker leases, the coordinator role and the batch's end, in rows: the same statements directly and
through a real PgBouncer in transaction mode (where a session advisory lock would not hold)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.db.batch_lock import COORDINATOR, SUPERVISOR, WORKER, BatchWorkers
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.statuses import BatchStatus

from ..harness import Env, platform_config
from .pgbouncer import pgbouncer

PROJECT = uuid.UUID("33333333-3333-3333-3333-333333333333")


@pytest.fixture
def bouncer_url(db_url: str) -> Iterator[str]:
    with pgbouncer(db_url) as url:
        yield url


@pytest.fixture(params=["direct", "pgbouncer"])
async def rows_store(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[Store]:
    """The test database directly, or through PgBouncer (transaction mode: no prepared statements)."""
    if request.param == "direct":
        pool = await open_pool(resolve_target(db_url), max_size=10)
        yield Store(pool)
        await pool.close()
        return
    with pgbouncer(db_url) as url:
        pool = await open_pool(resolve_target(url, "transaction"), max_size=10)
        yield Store(pool)
        await pool.close()


async def _batch(store: Store, key: str) -> uuid.UUID:
    await store.import_prompts([NewPrompt(PROJECT, f"{key} prompt {i}") for i in range(3)])
    batch, _ = await store.create_batch(key=key, trigger="manual", platforms=["openai"])
    return batch.id


def _decide(unfinished: int) -> BatchStatus:
    return BatchStatus.COMPLETED_WITH_ERRORS if unfinished else BatchStatus.COMPLETED


async def test_coordinator_role_is_held_by_one_live_process(rows_store: Store) -> None:
    b = await _batch(rows_store, "role")
    a = BatchWorkers(rows_store, b, "host:1:a", role=COORDINATOR, lease_s=30)
    first = await a.join()
    assert not first.busy and first.new_round and first.calling == 1
    second = await BatchWorkers(rows_store, b, "host:2:b", role=COORDINATOR, lease_s=30).join()
    assert second.busy  # `analyze run` twice on one batch: the second exits 75
    supervisor = await BatchWorkers(rows_store, b, "host:3:c", role=SUPERVISOR, lease_s=30).join()
    assert supervisor.busy
    w = BatchWorkers(rows_store, b, "host:4:d", role=WORKER, lease_s=30)
    joined = await w.join()
    assert not joined.busy and not joined.new_round and joined.calling == 2
    assert w.round_started_at == a.round_started_at is not None


async def test_a_dead_coordinators_role_and_claims_are_taken_over(rows_store: Store) -> None:
    b = await _batch(rows_store, "dead")
    dead = BatchWorkers(rows_store, b, "host:1:dead", role=COORDINATOR, lease_s=0.2)
    await dead.join()
    rows_store = rows_store.for_round(dead.round_started_at)
    [pair] = await rows_store.pending_pairs(b, "openai", after=None, limit=1)
    assert await rows_store.claim(pair, owner="host:1:dead", lease_s=3600) is not None
    await asyncio.sleep(0.5)  # its lease runs out: it no longer heartbeats
    alive = BatchWorkers(rows_store, b, "host:2:alive", role=WORKER, lease_s=30)
    await alive.join()
    assert await alive.heartbeat() == 1  # the dead one is declared so; its hour-long claim expires now
    assert await rows_store.claim(pair, owner="host:2:alive", lease_s=60) is not None
    again = await BatchWorkers(rows_store, b, "host:3:new", role=COORDINATOR, lease_s=30).join()
    assert not again.busy


async def test_the_last_worker_finishes_the_batch_exactly_once(rows_store: Store) -> None:
    """Workers leaving at the same moment: under the batch row's lock exactly one of them is last."""
    b = await _batch(rows_store, "last")
    members = [BatchWorkers(rows_store, b, f"host:{i}:w", role=WORKER, lease_s=30) for i in range(6)]
    for m in members:
        await m.join()
    left = await asyncio.gather(*(m.leave(state="done", calls=0, decide=_decide) for m in members))
    assert sum(x.last for x in left) == 1
    final = next(x for x in left if x.last).batch
    assert final.status == "completed_with_errors" and final.completed_at is not None  # no pair was called
    row = await rows_store.fetchone("SELECT count(*) AS n FROM batch_workers WHERE state = 'done'")
    assert row == {"n": 6}
    late = await BatchWorkers(rows_store, b, "host:9:late", role=WORKER, lease_s=30).join()
    assert late.finished


async def test_errors_of_the_round_are_final_for_it(rows_store: Store) -> None:
    """A pair that failed in this round is not claimed again by another worker; a new round (a resume)
    retries it, and an interrupted pair is claimable at once."""
    b = await _batch(rows_store, "round")
    w = BatchWorkers(rows_store, b, "host:1:w", role=WORKER, lease_s=30)
    await w.join()
    s = rows_store.for_round(w.round_started_at)
    pairs = await s.pending_pairs(b, "openai", after=None, limit=10)
    failed, stopped = pairs[0], pairs[1]
    rid = await s.claim(failed, owner="host:1:w", lease_s=60)
    assert rid is not None
    await s.record_error(rid, failed.job_id, error_class="permanent", message="400", metadata={})
    rid2 = await s.claim(stopped, owner="host:1:w", lease_s=60)
    assert rid2 is not None
    await s.release_claims("host:1:w")
    todo = {p.job_id for p in await s.pending_pairs(b, "openai", after=None, limit=10)}
    assert failed.job_id not in todo and stopped.job_id in todo
    assert await s.claim(failed, owner="host:2:other", lease_s=60) is None
    assert (await s.batch_activity(b, ["openai"], owner="host:2:other")).todo == 2
    await w.leave(state="done", calls=2, decide=_decide)
    resumed = BatchWorkers(rows_store, b, "host:3:resume", role=COORDINATOR, lease_s=30)
    assert (await resumed.join(reopen=True)).new_round  # a rerun of the finished batch
    s2 = rows_store.for_round(resumed.round_started_at)
    assert await s2.claim(failed, owner="host:3:resume", lease_s=60) is not None


async def test_workers_finish_a_batch_through_pgbouncer(env: Env, bouncer_url: str) -> None:
    """`run --workers 2` and a joining `analyze worker` with every connection through PgBouncer in
    transaction mode: each pair once, the batch finished once."""
    env.db_url = bouncer_url
    env.write_config(platform_config() + '\n[database]\npooler = "transaction"\n[coordination]\nworker_lease_s = 10\n')
    texts = [f"pooled prompt {i}" for i in range(30)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "pooled", "--workers", "2", "--json", timeout=180)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "completed"
    rows = await env.rows()
    assert len(rows) == 120 and all(x["status"] == "success" and x["attempts"] == 1 for x in rows)
    answered = (await env.sim.stats())["answered"]
    assert all(n == 1 for a in answered.values() for n in a.values())
    again = await env.analyze("worker", "--key", "pooled")
    assert again.code == 0 and "nothing to do" in again.stderr


async def _many(store: Store, key: str, n: int) -> uuid.UUID:
    await store.import_prompts([NewPrompt(PROJECT, f"{key} prompt {i}") for i in range(n)])
    batch, _ = await store.create_batch(key=key, trigger="manual", platforms=["openai", "gemini"])
    return batch.id


async def test_concurrent_picks_claim_disjoint_pairs_without_counting_attempts(rows_store: Store) -> None:
    """Four workers' lanes pick pages at once: every pair is claimed by exactly one of them, and a pick
    counts no attempt (the call counts its own, if it is made)."""
    b = await _many(rows_store, "picks", 40)
    got: dict[str, list[uuid.UUID]] = {}

    async def lane(owner: str, platform: str) -> None:
        after = None
        while True:
            picked = await rows_store.pick_pairs(b, platform, after=after, limit=3, owner=owner, lease_s=60)
            if picked.last_job is None:
                if after is None:  # done unless pairs are left that a pick passed over (their job was locked)
                    if not await rows_store.lane_pending(b, platform):
                        return
                    await asyncio.sleep(0.01)
                after = None
                continue
            after = picked.last_job
            got.setdefault(platform, []).extend(p.job_id for p in picked.pairs)
            assert all(p.response_id is not None and p.platform == platform for p in picked.pairs)

    await asyncio.gather(*(lane(f"host:{w}:x", pl) for w in range(4) for pl in ("openai", "gemini")))
    for platform in ("openai", "gemini"):
        assert len(got[platform]) == 40 and len(set(got[platform])) == 40
    rows = await rows_store.fetchall("SELECT status, attempts, claimed_by FROM ai_responses")
    assert len(rows) == 80
    assert all(r["status"] == "processing" and r["attempts"] == 0 and r["claimed_by"] for r in rows)
    jobs = await rows_store.fetchall("SELECT DISTINCT status FROM analysis_jobs WHERE batch_id = %s", (b,))
    assert [r["status"] for r in jobs] == ["running"]


async def test_an_attempt_is_counted_only_on_a_claim_still_held(rows_store: Store) -> None:
    b = await _many(rows_store, "count", 2)
    mine = (await rows_store.pick_pairs(b, "openai", after=None, limit=1, owner="host:1:a", lease_s=60)).pairs
    theirs = (await rows_store.pick_pairs(b, "openai", after=None, limit=1, owner="host:2:b", lease_s=60)).pairs
    assert len(mine) == len(theirs) == 1 and mine[0].job_id != theirs[0].job_id
    ids = [mine[0].response_id, theirs[0].response_id]
    assert await rows_store.count_attempts([(i, 60.0) for i in ids if i], owner="host:1:a") == [True, False]
    attempts = {r["id"]: r["attempts"] for r in await rows_store.fetchall("SELECT id, attempts FROM ai_responses")}
    assert attempts == {ids[0]: 1, ids[1]: 0}
    await rows_store.release_claims("host:1:a")  # stopped: its claim is released, so no more calls on it
    assert await rows_store.count_attempts([(ids[0], 60.0)], owner="host:1:a") == [False]  # type: ignore[list-item]


async def test_a_pick_skips_a_job_another_transaction_holds(rows_store: Store, db_url: str) -> None:
    """A job locked elsewhere (another worker's pick, an answer being recorded) is passed over at once,
    not waited for, and picked by a later walk once it is free."""
    b = await _many(rows_store, "skip", 3)
    jobs = [r["id"] for r in await rows_store.fetchall(
        "SELECT id FROM analysis_jobs WHERE batch_id = %s ORDER BY id", (b,))]
    async with await psycopg.AsyncConnection.connect(db_url) as other:
        async with other.transaction():
            await other.execute("SELECT 1 FROM analysis_jobs WHERE id = %s FOR UPDATE", (jobs[0],))
            async with asyncio.timeout(20):  # SKIP LOCKED: no wait (a plain FOR UPDATE would hang here)
                picked = await rows_store.pick_pairs(b, "openai", after=None, limit=3, owner="host:1:a",
                                                     lease_s=60)
            assert [p.job_id for p in picked.pairs] == jobs[1:] and picked.last_job == jobs[2]
    again = await rows_store.pick_pairs(b, "openai", after=None, limit=3, owner="host:1:a", lease_s=60)
    assert [p.job_id for p in again.pairs] == jobs[:1]
