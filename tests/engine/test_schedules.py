"""The lane schedule's picks against a real PostgreSQL: their size, the walk that starts over, pairs
passed over while other transactions held their jobs, and claims whose pick reply was lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import cast

import psycopg

from prompt_analyzer.config import PlatformSettings
from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.engine.dbcalls import RetryingCalls
from prompt_analyzer.engine.lane import Lane
from prompt_analyzer.engine.schedules import Picks
from prompt_analyzer.engine.stopping import Stop
from prompt_analyzer.providers import Provider

PROJECT = uuid.UUID("44444444-4444-4444-4444-444444444444")
OWNER = "host:1:picks"


def _never_used() -> Provider:
    return cast(Provider, object())  # a lane makes its client at once; picks never use it


def _lane(rpm: float, max_concurrency: int | None = None, name: str = "openai") -> Lane:
    settings = PlatformSettings(name=name, rpm=rpm, max_concurrency=max_concurrency)
    return Lane.open(settings, _never_used, breaker_threshold=5)


def _picks(store: Store, batch: uuid.UUID, lane: Lane, page_size: int = 500,
           stopped: Callable[[], bool] = lambda: False) -> Picks:
    db = RetryingCalls(store, where="test", within_s=5.0, stop=Stop())
    return Picks(store, db, batch, lane, owner=OWNER, lease_s=60, page_size=page_size, stopped=stopped)


async def _batch(store: Store, n: int, platforms: list[str] | None = None,
                 key: str = "picks") -> tuple[uuid.UUID, list[uuid.UUID]]:
    project = uuid.uuid5(PROJECT, key)  # a batch takes every active prompt: one project per batch
    await store.import_prompts([NewPrompt(project, f"schedule prompt {i}") for i in range(n)])
    batch, _ = await store.create_batch(key=key, trigger="manual", platforms=platforms or ["openai"],
                                        project_ids=[project])
    jobs = [r["id"] for r in await store.fetchall("SELECT id FROM analysis_jobs WHERE batch_id = %s ORDER BY id",
                                                   (batch.id,))]
    return batch.id, jobs


async def _held(store: Store) -> int:
    rows = await store.fetchall("SELECT count(*) AS n FROM ai_responses WHERE claimed_by = %s", (OWNER,))
    return int(rows[0]["n"])


async def test_a_pick_is_about_a_second_of_the_calls_the_lane_can_make(store: Store) -> None:
    batch, _ = await _batch(store, 30)
    assert _picks(store, batch, _lane(rpm=600)).size() == 10  # 10 calls/s
    assert _picks(store, batch, _lane(rpm=6)).size() == 1
    assert _picks(store, batch, _lane(rpm=600_000, max_concurrency=1000), page_size=50).size() == 50
    # 4 calls in flight of ~10 s each make 0.4 calls/s whatever the rate allows: one pair at a time
    assert _picks(store, batch, _lane(rpm=3000, max_concurrency=4)).size() == 1
    picks = _picks(store, batch, _lane(rpm=600))
    first = await picks.next()
    assert first is not None and first.response_id is not None
    assert await _held(store) == 10  # one pick: this worker holds a second's worth, not the batch


async def test_the_walk_starts_over_for_pairs_passed_over(store: Store, db_url: str) -> None:
    """A job locked while the walk passed it is picked when the walk starts over; then the lane ends."""
    batch, jobs = await _batch(store, 5)
    picks = _picks(store, batch, _lane(rpm=60))  # one pair per pick
    seen: list[uuid.UUID] = []
    async with await psycopg.AsyncConnection.connect(db_url) as other:
        async with other.transaction():
            await other.execute("SELECT 1 FROM analysis_jobs WHERE id = %s FOR UPDATE", (jobs[1],))
            while len(seen) < 4:
                async with asyncio.timeout(20):
                    pair = await picks.next()
                assert pair is not None
                seen.append(pair.job_id)
    assert seen == [jobs[0], *jobs[2:]]
    last = await picks.next()
    assert last is not None and last.job_id == jobs[1]
    assert await picks.next() is None
    assert await picks.next() is None  # done stays done
    rows = await store.fetchall("SELECT attempts, claimed_by FROM ai_responses")
    assert len(rows) == 5 and all(r["attempts"] == 0 and r["claimed_by"] == OWNER for r in rows)


async def test_a_lane_does_not_end_while_its_pairs_are_only_locked(store: Store, db_url: str) -> None:
    """Another transaction holds the only job (another platform's pick, an answer being written): the
    lane waits for it instead of ending with its pair unclaimed."""
    batch, jobs = await _batch(store, 1)
    picks = _picks(store, batch, _lane(rpm=60))
    other = await psycopg.AsyncConnection.connect(db_url)
    try:
        await other.execute("SELECT 1 FROM analysis_jobs WHERE id = %s FOR UPDATE", (jobs[0],))
        taking = asyncio.create_task(picks.next())
        await asyncio.sleep(0.5)
        assert not taking.done()  # passed over, not ended
        await other.commit()
        async with asyncio.timeout(20):
            pair = await taking
        assert pair is not None and pair.job_id == jobs[0]
    finally:
        await other.close()
    assert await picks.next() is None


async def test_concurrent_lanes_of_one_job_each_get_their_pair(store: Store) -> None:
    """Four platforms' lanes picking the same single job at once (as `analyze prompt` does): each gets its
    own pair, though they lock the same job row and most first picks pass over it.  Ten batches."""
    platforms = ["openai", "gemini", "claude", "perplexity"]
    for i in range(10):
        batch, jobs = await _batch(store, 1, platforms, key=f"one job {i}")
        lanes = [_picks(store, batch, _lane(rpm=60, name=p)) for p in platforms]
        async with asyncio.timeout(30):
            got = await asyncio.gather(*(picks.next() for picks in lanes))
        assert [g.platform if g else None for g in got] == platforms
        assert all(g is not None and g.job_id == jobs[0] for g in got)


async def test_a_claim_whose_pick_reply_was_lost_is_released_not_called_blind(store: Store) -> None:
    """A pick committed but its reply never reached the worker (the connection dropped after the commit;
    the retry picked further on): the lane calls the rest and ends; the lost claim is not called on a
    guess (it could as well be a call already made), it is released with the run's claims and a later
    pick takes it."""
    batch, jobs = await _batch(store, 3)
    lost = await store.pick_pairs(batch, "openai", after=None, limit=1, owner=OWNER, lease_s=60)
    assert [p.job_id for p in lost.pairs] == jobs[:1]  # claimed by this worker, never handed out
    picks = _picks(store, batch, _lane(rpm=60))
    taken = []
    async with asyncio.timeout(30):
        while (pair := await picks.next()) is not None:
            taken.append(pair.job_id)
            await store.fetchall("UPDATE ai_responses SET status = 'success', claimed_by = NULL WHERE id = %s "
                                 "RETURNING id", (pair.response_id,))  # answered
            picks.done(pair)
    assert taken == jobs[1:]
    assert await store.release_claims(OWNER) == 1  # the run's end
    again = await store.pick_pairs(batch, "openai", after=None, limit=3, owner="host:2:next", lease_s=60)
    assert [p.job_id for p in again.pairs] == jobs[:1]
