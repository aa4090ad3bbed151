"""The lane schedule's picks against a real PostgreSQL: their size, and the walk that starts over."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import cast

import psycopg

from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.engine.dbcalls import RetryingCalls
from prompt_analyzer.engine.lane import Lane
from prompt_analyzer.engine.schedules import Picks
from prompt_analyzer.engine.stopping import Stop

PROJECT = uuid.UUID("44444444-4444-4444-4444-444444444444")


def _lane(rpm: float) -> Lane:
    """Picks read a lane's name and its pacer's rate only."""
    return cast(Lane, SimpleNamespace(name="openai", pacer=SimpleNamespace(rpm=rpm)))


def _picks(store: Store, batch: uuid.UUID, rpm: float, page_size: int = 500) -> Picks:
    db = RetryingCalls(store, where="test", within_s=5.0, stop=Stop())
    return Picks(store, db, batch, _lane(rpm), owner="host:1:picks", lease_s=60, page_size=page_size)


async def _batch(store: Store, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    await store.import_prompts([NewPrompt(PROJECT, f"schedule prompt {i}") for i in range(n)])
    batch, _ = await store.create_batch(key="picks", trigger="manual", platforms=["openai"])
    jobs = [r["id"] for r in await store.fetchall("SELECT id FROM analysis_jobs WHERE batch_id = %s ORDER BY id",
                                                   (batch.id,))]
    return batch.id, jobs


async def test_a_pick_is_about_a_second_of_the_lanes_calls(store: Store) -> None:
    batch, _ = await _batch(store, 30)
    assert _picks(store, batch, rpm=600).size() == 10  # 10 calls/s
    assert _picks(store, batch, rpm=6).size() == 1
    assert _picks(store, batch, rpm=600_000, page_size=50).size() == 50
    picks = _picks(store, batch, rpm=600)
    first = await picks.next()
    assert first is not None and first.response_id is not None
    held = await store.fetchall("SELECT count(*) AS n FROM ai_responses WHERE claimed_by = 'host:1:picks'")
    assert held[0]["n"] == 10  # one pick: this worker holds a second's worth, not the batch


async def test_the_walk_starts_over_for_pairs_passed_over(store: Store, db_url: str) -> None:
    """A job locked while the walk passed it is picked when the walk starts over; then the lane ends."""
    batch, jobs = await _batch(store, 5)
    picks = _picks(store, batch, rpm=60)  # one pair per pick
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
    assert len(rows) == 5 and all(r["attempts"] == 0 and r["claimed_by"] == "host:1:picks" for r in rows)
