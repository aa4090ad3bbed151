"""Migrations on the original service's tables (issue 10): legacy shapes built with plain SQL, migrated through
``migrate()`` and through ``python -m prompt_analyzer db migrate``, then checked column by column and row by
row, migrated again (nothing to do) and used by the engine's store."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from prompt_analyzer.db import CitationRow, NewPrompt, Store, SuccessRecord
from prompt_analyzer.db.connect import open_pool, resolve_target

from .legacy_schemas import ACTIVE_LEGACY_PROMPTS, DOCUMENTED_DDL, DOCUMENTED_ROWS, NEWLY_RLS, PROJECT, SHAPES

CONTRACT_TABLES = ("prompt_tracking", "analysis_batches", "analysis_jobs", "ai_responses", "ai_response_citations")
LEGACY_TABLES = ("prompt_tracking", "analysis_jobs", "ai_responses")
ROOT = Path(__file__).resolve().parents[2]
# the module (prompt_analyzer.db re-exports its function under the same name)
migrate_mod = importlib.import_module("prompt_analyzer.db.migrate")

Columns = dict[str, dict[str, tuple[str, str]]]  # table -> column -> (data_type, is_nullable)


def columns(conn: psycopg.Connection[Any], tables: Iterable[str]) -> Columns:
    out: Columns = {}
    for table, column, data_type, nullable in conn.execute(
        """SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY table_name, ordinal_position""",
        (list(tables),),
    ):
        out.setdefault(table, {})[column] = (data_type, nullable)
    return out


def snapshot(conn: psycopg.Connection[Any], original: Columns) -> dict[str, list[dict[str, Any]]]:
    """Every row of the legacy tables, restricted to the columns they had before migrating."""
    out = {}
    for table, cols in original.items():
        rows = conn.execute(sql.SQL("SELECT to_jsonb(t) FROM {} t ORDER BY id").format(sql.Identifier(table)))
        out[table] = [{c: r[0][c] for c in cols} for r in rows]
    return out


@pytest.fixture(scope="module")
def engine_columns(make_database: Callable[[], str]) -> dict[str, set[str]]:
    """The columns 0001 creates on an empty database: what the engine is written against."""
    url = make_database()
    [schema] = [m for m in migrate_mod.available() if m.version == 1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema.sql)
        return {t: set(cols) for t, cols in columns(conn, CONTRACT_TABLES).items()}


@dataclass
class Outcome:
    applied: list[str]  # "0001_schema", ... as the CLI prints them
    rls_tables: set[str]  # tables named by a row-level-security notice
    output: str = ""
    notices: list[str] = field(default_factory=list)


async def migrate_api(url: str) -> Outcome:
    conn = await psycopg.AsyncConnection.connect(url, row_factory=dict_row)
    try:
        applied = await migrate_mod.migrate(conn)
    finally:
        await conn.close()
    notices = migrate_mod.migration_notices(applied)
    return Outcome([f"{m.version:04d}_{m.name}" for m in applied], {n.split(":", 1)[0] for n in notices},
                   notices=notices)


async def migrate_cli(url: str, home: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_ANALYZER_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, PROMPT_ANALYZER_HOME=str(home))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prompt_analyzer", "db", "migrate", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr}"
    return Outcome(re.findall(r"^applied (\S+)$", stdout, re.M),
                   set(re.findall(r"^warning: (\w+): row level security", stderr, re.M)), stdout + stderr)


async def use_engine(url: str, legacy_active: set[uuid.UUID]) -> None:
    """The store's write path on the migrated database: add, batch, page, claim, record."""
    store = Store(await open_pool(resolve_target(url), max_size=4))
    try:
        new = await store.add_prompt(NewPrompt(PROJECT, "which crm do founders recommend?"))
        batch, created = await store.create_batch(key="legacy:1", trigger="manual", platforms=["openai"])
        assert created
        pairs = await store.pending_pairs(batch.id, "openai", after=None, limit=100)
        assert {p.prompt_id for p in pairs} == {new["id"]} | legacy_active
        ids = await store.claim_many([(p, 60.0) for p in pairs], owner="test-run")
        assert None not in ids
        await store.record_successes([
            SuccessRecord(rid, p.job_id, "gpt-test", f"answer {i}", 10, 5, 15, Decimal("0.0015"), 321,
                          {"request_id": f"req-{i}"}, [CitationRow(1, "https://a.example/", "a.example", "A", True)])
            for i, (rid, p) in enumerate(zip(ids, pairs, strict=True))
        ])
        rows = await store.fetchall(
            """SELECT r.status, r.metadata, r.attempts, r.tokens_used, j.status AS job_status, j.completed_platforms,
                      (SELECT count(*) FROM ai_response_citations c WHERE c.ai_response_id = r.id) AS cites
               FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id WHERE j.batch_id = %s""",
            (batch.id,),
        )
        assert len(rows) == len(pairs)
        for r in rows:
            assert (r["status"], r["attempts"], r["tokens_used"], r["job_status"]) == ("success", 1, 15, "completed")
            assert r["completed_platforms"] == 1 and r["cites"] == 1
            assert r["metadata"]["request_id"].startswith("req-"), r["metadata"]  # not NULL || {...}
        counters = await store.refresh_batch_counters(batch.id)
        assert (counters.total_jobs, counters.completed_jobs) == (len(pairs), len(pairs))
        [stats] = await store.platform_stats(batch.id)
        assert (stats["success"], stats["tokens"]) == (len(pairs), 15 * len(pairs))
    finally:
        await store.close()


@pytest.mark.parametrize("via", ["api", "cli"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_migrate_legacy_shape(
    shape: str, via: str, make_database: Callable[[], str], engine_columns: dict[str, set[str]], tmp_path: Path
) -> None:
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        if SHAPES[shape]:
            conn.execute(SHAPES[shape])
        original = columns(conn, LEGACY_TABLES)
        before = snapshot(conn, original)

    async def run() -> Outcome:
        return await (migrate_api(url) if via == "api" else migrate_cli(url, tmp_path))

    first = await run()
    assert first.applied == [f"{m.version:04d}_{m.name}" for m in migrate_mod.available()], first.output
    assert first.rls_tables == NEWLY_RLS[shape], first.output or first.notices

    with psycopg.connect(url) as conn:
        now = columns(conn, CONTRACT_TABLES)
        for table in CONTRACT_TABLES:
            missing = engine_columns[table] - set(now.get(table, {}))
            assert not missing, f"{table} lacks {sorted(missing)}"
        for table, cols in original.items():  # legacy columns keep their type and their nullability
            assert {c: now[table][c] for c in cols} == cols
        assert snapshot(conn, original) == before
        recorded = [r[0] for r in conn.execute("SELECT version FROM prompt_analyzer_migrations ORDER BY version")]
        assert recorded == [m.version for m in migrate_mod.available()]

    second = await run()
    assert second.applied == [] and second.rls_tables == set(), second.output
    if via == "cli":
        assert "up to date" in second.output

    await use_engine(url, ACTIVE_LEGACY_PROMPTS if shape != "empty" else set())
    with psycopg.connect(url) as conn:  # the engine never touches the legacy rows
        legacy_ids = {t: {r["id"] for r in rows} for t, rows in before.items()}
        after = {t: [r for r in rows if r["id"] in legacy_ids[t]] for t, rows in snapshot(conn, original).items()}
        assert after == before


async def test_failed_legacy_migration_changes_nothing(make_database: Callable[[], str]) -> None:
    """Legacy rows that break a unique constraint stop the migration; the columns added for 0001 roll back too."""
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DOCUMENTED_DDL + DOCUMENTED_ROWS)
        conn.execute("ALTER TABLE ai_responses ADD COLUMN analysis_job_id uuid")
        conn.execute("UPDATE ai_responses SET analysis_job_id = 'bbbbbbbb-0000-0000-0000-000000000001'"
                     " WHERE platform = 'openai'")  # two rows: the same (job, platform) twice
        original = columns(conn, LEGACY_TABLES)
        before = snapshot(conn, original)
    with pytest.raises(psycopg.errors.RaiseException, match="duplicate"):
        await migrate_api(url)
    with psycopg.connect(url) as conn:
        assert columns(conn, LEGACY_TABLES) == original
        assert snapshot(conn, original) == before
        assert conn.execute("SELECT count(*) FROM prompt_analyzer_migrations").fetchone() == (0,)
        assert conn.execute("SELECT column_default FROM information_schema.columns"
                            " WHERE table_name = 'prompt_tracking' AND column_name = 'id'").fetchone() == (None,)


async def test_rls_notice_names_only_tables_with_rows(make_database: Callable[[], str]) -> None:
    """A legacy table that is empty loses nothing to row level security: no notice for it."""
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DOCUMENTED_DDL + DOCUMENTED_ROWS)
        conn.execute("DELETE FROM analysis_jobs")
    first = await migrate_api(url)
    assert first.rls_tables == {"prompt_tracking", "ai_responses"}
    for notice in first.notices:
        assert "policy" in notice and "authenticated" in notice
