"""The store against a real PostgreSQL: migrations, paging, batch creation, pair state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from prompt_analyzer.db import CitationRow, NewPrompt, Store, SuccessRecord
from prompt_analyzer.db.migrate import available, migrate

PROJECT = uuid.UUID("11111111-1111-1111-1111-111111111111")


async def _migrate(url: str) -> list[str]:
    conn = await psycopg.AsyncConnection.connect(url, row_factory=psycopg.rows.dict_row)
    try:
        return [m.name for m in await migrate(conn)]
    finally:
        await conn.close()


async def test_migrate_twice_second_is_noop(make_database: Callable[[], str]) -> None:
    url = make_database()
    first = await _migrate(url)
    assert first == [m.name for m in available()]
    assert await _migrate(url) == []
    with psycopg.connect(url) as conn:
        rls = conn.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relrowsecurity",
            (["prompt_tracking", "analysis_batches", "analysis_jobs", "ai_responses", "ai_response_citations"],),
        ).fetchall()
    assert len(rls) == 5


LEGACY = """
CREATE TABLE prompt_tracking (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), project_id uuid NOT NULL,
    prompt_text text NOT NULL, is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE analysis_jobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), project_id uuid NOT NULL,
    prompt_tracking_id uuid NOT NULL REFERENCES prompt_tracking, status text, created_by uuid,
    created_at timestamptz DEFAULT now());
CREATE TABLE ai_responses (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    analysis_job_id uuid REFERENCES analysis_jobs ON DELETE CASCADE, prompt_tracking_id uuid NOT NULL,
    project_id uuid NOT NULL, platform text NOT NULL, prompt_text text NOT NULL, response_text text,
    status text NOT NULL, tokens_used integer, cost numeric, metadata jsonb DEFAULT '{}',
    created_at timestamptz DEFAULT now());
INSERT INTO prompt_tracking (id, project_id, prompt_text)
    VALUES ('aaaaaaaa-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'legacy prompt');
INSERT INTO analysis_jobs (id, project_id, prompt_tracking_id, status)
    VALUES ('bbbbbbbb-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111',
            'aaaaaaaa-0000-0000-0000-000000000001', 'completed');
INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform, prompt_text, response_text,
                          status, tokens_used, cost)
    VALUES ('bbbbbbbb-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-000000000001',
            '11111111-1111-1111-1111-111111111111', 'openai', 'legacy prompt', 'old answer', 'success', 42, 0.01);
"""


async def test_migrate_keeps_legacy_rows(make_database: Callable[[], str]) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY)
        before = conn.execute("SELECT * FROM ai_responses").fetchall()
    await _migrate(url)
    with psycopg.connect(url) as conn:
        after = conn.execute(
            "SELECT id, analysis_job_id, prompt_tracking_id, project_id, platform, prompt_text, response_text,"
            " status, tokens_used, cost, metadata, created_at FROM ai_responses"
        ).fetchall()
        assert after == before
        assert conn.execute("SELECT prompt_text, is_active, platforms FROM prompt_tracking").fetchall() == [
            ("legacy prompt", True, None)
        ]
        job = conn.execute("SELECT batch_id, status, total_platforms FROM analysis_jobs").fetchone()
        assert job == (None, "completed", 0)
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ai_responses'")}
    assert {"attempts", "error_message", "execution_time_ms", "input_tokens", "model_version"} <= cols


async def test_migrate_refuses_duplicate_legacy_pairs(make_database: Callable[[], str]) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY)
        conn.execute("INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform,"
                     " prompt_text, status) SELECT analysis_job_id, prompt_tracking_id, project_id, platform,"
                     " prompt_text, 'error' FROM ai_responses")
    with pytest.raises(psycopg.errors.RaiseException, match="duplicate"):
        await _migrate(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ai_responses").fetchone() == (2,)
        assert conn.execute("SELECT to_regclass('analysis_batches')").fetchone() == (None,)


async def test_iter_prompts_pages_in_id_order(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, f"prompt {i}") for i in range(23)])
    await store.add_prompt(NewPrompt(PROJECT, "inactive", is_active=False))
    seen = [r async for r in store.iter_prompts(page_size=5)]
    assert len(seen) == 23
    assert [r["id"] for r in seen] == sorted(r["id"] for r in seen)
    assert len([r async for r in store.iter_prompts(page_size=5, include_inactive=True)]) == 24


async def test_create_batch_is_set_based_and_idempotent(store: Store) -> None:
    other = uuid.uuid4()
    await store.import_prompts(
        [NewPrompt(PROJECT, "all platforms"), NewPrompt(PROJECT, "only claude", platforms=["claude"]),
         NewPrompt(PROJECT, "only unknown", platforms=["gemini"]), NewPrompt(other, "other project")]
    )
    batch, created = await store.create_batch(
        key="k1", trigger="manual", platforms=["openai", "claude"], project_ids=[PROJECT]
    )
    assert created and batch.total_jobs == 2
    again, created2 = await store.create_batch(key="k1", trigger="manual", platforms=["openai"])
    assert not created2 and again.id == batch.id
    counts = await store.pair_counts(batch.id)
    assert {k: v["total"] for k, v in counts.items()} == {"openai": 1, "claude": 2}


async def test_claim_success_error_and_counters(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, "p1"), NewPrompt(PROJECT, "p2")])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai", "claude"])
    pairs = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    assert len(pairs) == 2
    rid = await store.claim(pairs[0], owner="run-a", lease_s=60)
    assert rid is not None
    assert await store.claim(pairs[0], owner="run-b", lease_s=60) is None  # live claim held
    await store.record_success(SuccessRecord(
        rid, pairs[0].job_id, "gpt-x", "answer", 10, 5, 15, Decimal("0.001"), 120, {"request_id": "r1"},
        [CitationRow(1, "https://a.com/", "a.com", "A", True), CitationRow(2, "https://b.com/", "b.com", None, False)],
    ))
    assert await store.claim(pairs[0], owner="run-b", lease_s=60) is None  # succeeded: never again
    # claude fails for the same job: job completes (one success) once every platform ended
    cpairs = await store.pending_pairs(batch.id, "claude", after=None, limit=10)
    crid = await store.claim(cpairs[0], owner="run-a", lease_s=60)
    assert crid is not None
    await store.record_error(crid, cpairs[0].job_id, error_class="transient", message="boom", metadata={})
    job = await store.fetchone("SELECT * FROM analysis_jobs WHERE id = %s", (pairs[0].job_id,))
    assert job is not None
    assert (job["status"], job["completed_platforms"], job["failed_platforms"]) == ("completed", 1, 1)
    # the errored pair is claimable again, attempts accumulate
    crid2 = await store.claim(cpairs[0], owner="run-b", lease_s=60)
    assert crid2 == crid
    row = await store.fetchone("SELECT attempts, status FROM ai_responses WHERE id = %s", (crid,))
    assert row == {"attempts": 2, "status": "processing"}
    cites = await store.fetchall("SELECT position, domain, cited FROM ai_response_citations ORDER BY position")
    assert cites == [{"position": 1, "domain": "a.com", "cited": True},
                     {"position": 2, "domain": "b.com", "cited": False}]
    b = await store.refresh_batch_counters(batch.id)
    assert (b.total_jobs, b.completed_jobs, b.failed_jobs) == (2, 0, 0)  # job 1 is running again


async def _expire(store: Store) -> int:
    async with store.pool.connection() as conn:
        cur = await conn.execute("UPDATE ai_responses SET claim_expires_at = now() - interval '1 second'")
        return cur.rowcount


async def test_expired_claims_are_reclaimed(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, "p1")])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai"])
    [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    assert await store.claim(pair, owner="dead", lease_s=3600) is not None
    assert await store.pending_pairs(batch.id, "openai", after=None, limit=10) == []
    assert await _expire(store) == 1  # its owner died: the lease ran out
    [again] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    assert await store.claim(again, owner="alive", lease_s=60) is not None


async def test_fail_remaining_is_set_based(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, f"p{i}") for i in range(50)])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai"])
    # a pair left `processing` by a dead run (its claim expired once the batch lock was taken) ends too
    [dead] = await store.pending_pairs(batch.id, "openai", after=None, limit=1)
    assert await store.claim(dead, owner="dead", lease_s=3600) is not None
    assert await _expire(store) == 1  # its owner died: the lease ran out
    n = await store.fail_remaining(batch.id, "openai", error_class="circuit_open", message="auth failed")
    assert n == 50
    left = await store.fetchone("SELECT count(*) AS n FROM ai_responses WHERE status = 'processing'")
    assert left == {"n": 0}
    b = await store.refresh_batch_counters(batch.id)
    assert b.failed_jobs == 50


async def test_nul_from_a_provider_is_replaced_everywhere(store: Store) -> None:
    """PostgreSQL text and jsonb refuse U+0000: text, titles, urls and JSON keys and values are cleaned."""
    await store.import_prompts([NewPrompt(PROJECT, "p1")])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai"])
    [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    rid = await store.claim(pair, owner="run", lease_s=60)
    assert rid is not None
    await store.record_success(SuccessRecord(
        rid, pair.job_id, "gpt\x00x", "an\x00swer", 1, 1, 2, Decimal("0.1"), 5,
        {"raw": {"t\x00": ["a\x00b", {"c": "\x00"}]}},
        [CitationRow(1, "https://a.com/\x00", "a.com", "ti\x00tle", True)],
    ))
    row = await store.fetchone("SELECT response_text, model_version, metadata FROM ai_responses WHERE id = %s",
                               (rid,))
    assert row is not None
    assert (row["response_text"], row["model_version"]) == ("an\ufffdswer", "gpt\ufffdx")
    assert row["metadata"]["raw"] == {"t\ufffd": ["a\ufffdb", {"c": "\ufffd"}]}
    cite = await store.fetchone("SELECT url, title FROM ai_response_citations")
    assert cite == {"url": "https://a.com/\ufffd", "title": "ti\ufffdtle"}
    await store.record_error(rid, pair.job_id, error_class="x", message="bad\x00", metadata={"k": "\x00"})


async def test_released_claims_end_interrupted_not_processing(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, "p1")])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai"])
    [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    assert await store.claim(pair, owner="run", lease_s=60) is not None
    assert await store.release_claims("run") == 1
    row = await store.fetchone("SELECT status, error_class, claimed_by FROM ai_responses")
    assert row == {"status": "error", "error_class": "interrupted", "claimed_by": None}
    await store.reconcile_jobs(batch.id)
    job = await store.fetchone("SELECT status, failed_platforms FROM analysis_jobs")
    assert job == {"status": "pending", "failed_platforms": 0}  # an interrupted pair has not failed
    # a resume offers it again and claims it
    [again] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    assert await store.claim(again, owner="resume", lease_s=60) is not None


async def test_a_lone_surrogate_from_a_provider_is_replaced(store: Store) -> None:
    """json.loads('"\\ud83d"') gives half an emoji, which no encoder takes: stored as U+FFFD."""
    await store.import_prompts([NewPrompt(PROJECT, "p1")])
    batch, _ = await store.create_batch(key="k", trigger="manual", platforms=["openai"])
    [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    rid = await store.claim(pair, owner="run", lease_s=60)
    assert rid is not None
    text = json.loads('"half \\ud83d emoji"')
    await store.record_success(SuccessRecord(
        rid, pair.job_id, "m", text, 1, 1, 2, Decimal("0.1"), 5, {"raw": {"t": text}},
        [CitationRow(1, "https://a.com/", "a.com", text, True)],
    ))
    row = await store.fetchone("SELECT response_text, metadata FROM ai_responses WHERE id = %s", (rid,))
    assert row is not None and row["response_text"] == "half \ufffd emoji"
    assert row["metadata"]["raw"]["t"] == "half \ufffd emoji"


async def test_an_answer_is_written_by_its_id_whatever_the_statistics(store: Store) -> None:
    """Statistics taken when every answer had succeeded (the normal state between runs) must not make
    the answer's UPDATE scan the partial index of unfinished rows: each answer would cost as much as the
    day's claims.  It looks its row up by primary key."""
    from prompt_analyzer.db.store import _RECORD_SUCCESS

    await store.import_prompts([NewPrompt(PROJECT, f"plan {i}") for i in range(2000)])
    yesterday, _ = await store.create_batch(key="yesterday", trigger="manual", platforms=["openai"])
    today, _ = await store.create_batch(key="today", trigger="manual", platforms=["openai"])
    async with store.pool.connection() as conn:
        insert = """INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform,
                                              prompt_text, status)
                    SELECT id, prompt_tracking_id, project_id, 'openai', 'x', %s FROM analysis_jobs
                    WHERE batch_id = %s"""
        await conn.execute(insert, ("success", yesterday.id))
        await conn.execute("ANALYZE ai_responses")
        await conn.execute(insert, ("processing", today.id))  # today's claims, unseen by the statistics
        row = await (await conn.execute("SELECT id FROM ai_responses WHERE status = %s LIMIT 1",
                                        ("processing",))).fetchone()
        assert row is not None
        params = ("answer", "m", 1, 2, 3, None, 4, "{}", row["id"])
        plan = "\n".join(str(next(iter(r.values()))) for r in await (
            await conn.execute(b"EXPLAIN " + _RECORD_SUCCESS.encode(), params)).fetchall())
    assert "ai_responses_pkey" in plan, plan
    assert "unfinished" not in plan, plan
