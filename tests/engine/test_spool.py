"""The spool against real PostgreSQL: answers go back only into the database they were received for.

Issue 10, item 4: a replay into another database (another DATABASE_URL, or the embedded one, with the
same home) used to delete the answers whose rows it could not find.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from prompt_analyzer.db import CitationRow, NewPrompt, Store, SuccessRecord
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.db.identity import DatabaseIdentity, database_identity
from prompt_analyzer.db.migrate import migrate
from prompt_analyzer.engine.spool import SPOOL_NAME, Spool

from ..conftest import TABLES

PROJECT = uuid.UUID("22222222-2222-2222-2222-222222222222")


@pytest.fixture(scope="module")
def other_url(make_database: Callable[[], str]) -> str:
    """A second migrated database on the same server (same cluster, another name)."""
    url = make_database()

    async def go() -> None:
        conn = await psycopg.AsyncConnection.connect(url, row_factory=psycopg.rows.dict_row)
        await migrate(conn)
        await conn.close()

    asyncio.run(go())
    return url


@pytest.fixture
async def store_b(other_url: str) -> AsyncIterator[Store]:
    with psycopg.connect(other_url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(TABLES)))
    pool = await open_pool(resolve_target(other_url), max_size=4)
    s = Store(pool)
    yield s
    await s.close()


async def answer_for(store: Store, text: str) -> SuccessRecord:
    """A paid answer whose pair is claimed (row `processing`) in ``store``'s database."""
    row = await store.add_prompt(NewPrompt(PROJECT, text))
    batch, _ = await store.create_batch(key=f"k-{uuid.uuid4()}", trigger="manual", platforms=["openai"],
                                        prompt_ids=[row["id"]])
    [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    rid = await store.claim(pair, owner="dead-run", lease_s=3600)
    assert rid is not None
    return SuccessRecord(rid, pair.job_id, "gpt-x", f"answer to {text}", 10, 5, 15, Decimal("0.001"), 120,
                         {"request_id": text}, [CitationRow(1, "https://a.com/", "a.com", "A", True)])


async def row(store: Store, rec: SuccessRecord) -> dict[str, object] | None:
    return await store.fetchone(
        "SELECT status, response_text, metadata ? 'replayed_from_spool' AS replayed FROM ai_responses WHERE id = %s",
        (rec.response_id,))


def spooled_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["response_id"] for line in path.read_text().splitlines() if line.strip()]


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if p.name != "spool.lock")


async def test_replay_into_another_database_keeps_the_answer(store: Store, store_b: Store, tmp_path: Path) -> None:
    """The issue: an answer spooled for A, replayed into B (which lacks its row), was deleted."""
    home = tmp_path / "home"
    rec = await answer_for(store, "spooled for A")
    spool_a = await Spool.open(home, store)
    spool_a.append(rec)
    assert spool_a.count == 1 and spool_a.path == home / SPOOL_NAME

    # a run on database B, same home: nothing of B's to write, A's answer must stay on disk
    await (await Spool.open(home, store_b)).replay(store_b)
    assert spooled_ids(home / SPOOL_NAME) == [str(rec.response_id)]
    assert await row(store, rec) == {"status": "processing", "response_text": None, "replayed": False}
    assert await store_b.fetchone("SELECT count(*) AS n FROM ai_responses") == {"n": 0}

    # the next run on A writes it
    result = await (await Spool.open(home, store)).replay(store)
    assert result.written == 1
    assert await row(store, rec) == {"status": "success", "response_text": "answer to spooled for A", "replayed": True}
    assert leftovers(home) == []


async def test_two_databases_in_one_home_each_replay_writes_only_its_own(
    store: Store, store_b: Store, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    a1, a2 = await answer_for(store, "a1"), await answer_for(store, "a2")
    b1 = await answer_for(store_b, "b1")
    spool_a, spool_b = await Spool.open(home, store), await Spool.open(home, store_b)
    spool_a.append(a1)
    spool_b.append(b1)
    spool_a.append(a2)
    before_b = (home / SPOOL_NAME).read_text().splitlines()[1]

    result = await (await Spool.open(home, store)).replay(store)
    assert [(await row(store, r) or {}).get("status") for r in (a1, a2)] == ["success", "success"]
    assert await row(store_b, b1) == {"status": "processing", "response_text": None, "replayed": False}
    assert spooled_ids(home / SPOOL_NAME) == [str(b1.response_id)]
    assert (home / SPOOL_NAME).read_text().splitlines() == [before_b]  # B's answer kept byte for byte
    assert (result.written, result.quarantined, sum(result.other_databases.values())) == (2, 0, 1)

    result = await (await Spool.open(home, store_b)).replay(store_b)
    assert await row(store_b, b1) == {"status": "success", "response_text": "answer to b1", "replayed": True}
    assert (result.written, sum(result.other_databases.values())) == (1, 0)
    assert leftovers(home) == []
    assert spool_a.identity != spool_b.identity and spool_a.path == spool_b.path


async def test_row_deleted_is_quarantined_and_succeeded_row_is_skipped(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    gone, done = await answer_for(store, "deleted since"), await answer_for(store, "answered again")
    spool = await Spool.open(home, store)
    spool.append(gone)
    spool.append(done)
    await store.fetchone("DELETE FROM ai_responses WHERE id = %s RETURNING id", (gone.response_id,))
    await store.record_success(SuccessRecord(done.response_id, done.job_id, "gpt-x", "a later run's answer", 1, 1, 2,
                                             None, 5, {}, []))
    with caplog.at_level(logging.INFO, logger="prompt_analyzer.engine"):
        result = await (await Spool.open(home, store)).replay(store)
    assert (result.written, result.already_written, result.quarantined) == (0, 1, 1)
    assert result.quarantine is not None and result.quarantine.parent == home
    assert spooled_ids(result.quarantine) == [str(gone.response_id)]
    assert not (home / SPOOL_NAME).exists()
    assert leftovers(home) == [result.quarantine.name]
    assert (await row(store, done) or {})["response_text"] == "a later run's answer"  # not overwritten
    warn = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(result.quarantine) in m and "1 answer(s)" in m for m in warn), warn
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("1 answer(s) skipped" in m for m in info), info

    # a second replay leaves the quarantine alone
    again = await (await Spool.open(home, store)).replay(store)
    assert (again.written, again.quarantined) == (0, 0)
    assert spooled_ids(result.quarantine) == [str(gone.response_id)]


async def test_work_file_left_by_a_crashed_replay_is_replayed(store: Store, tmp_path: Path) -> None:
    """A replay killed after renaming the spool to its work file: the next replay takes the work file up."""
    home = tmp_path / "home"
    first, second = await answer_for(store, "in the dead replay's work file"), await answer_for(store, "appended after")
    spool = await Spool.open(home, store)
    spool.append(first)
    # what a replay killed mid-way leaves behind: the spool renamed to its work file
    (home / SPOOL_NAME).rename(home / f"{SPOOL_NAME}.replaying-deadbeef")
    spool.append(second)  # a later run appended to a fresh spool
    result = await (await Spool.open(home, store)).replay(store)
    assert [(await row(store, r) or {}).get("status") for r in (first, second)] == ["success", "success"]
    assert leftovers(home) == []
    assert result.written == 2


async def test_replay_failing_midway_puts_every_line_back(store: Store, tmp_path: Path) -> None:
    home = tmp_path / "home"
    recs = [await answer_for(store, f"p{i}") for i in range(3)]
    spool = await Spool.open(home, store)
    for r in recs:
        spool.append(r)

    class Down(Store):
        calls = 0

        async def record_spooled(self, rec: SuccessRecord) -> bool:
            Down.calls += 1
            if Down.calls == 2:
                raise psycopg.OperationalError("connection lost")
            return await super().record_spooled(rec)

    with pytest.raises(psycopg.OperationalError):
        await spool.replay(Down(store.pool))
    assert spooled_ids(home / SPOOL_NAME) == [str(r.response_id) for r in recs[1:]]
    assert leftovers(home) == [SPOOL_NAME]
    result = await spool.replay(store)
    assert result.written == 2 and leftovers(home) == []


async def test_legacy_unkeyed_lines_place_what_belongs_and_keep_the_rest(store: Store, tmp_path: Path) -> None:
    """spool.jsonl written by the previous version (no database identity)."""
    home = tmp_path / "home"
    home.mkdir()
    mine = await answer_for(store, "legacy, row here")
    foreign = SuccessRecord(uuid.uuid4(), uuid.uuid4(), "m", "legacy, row elsewhere", 1, 1, 2, None, 5, {}, [])

    def legacy_line(rec: SuccessRecord) -> str:
        return json.dumps({"response_id": str(rec.response_id), "job_id": str(rec.job_id),
                           "model_version": rec.model_version, "response_text": rec.response_text,
                           "input_tokens": 1, "output_tokens": 1, "total_tokens": 2, "cost": None,
                           "execution_time_ms": 5, "metadata": {}, "citations": []})

    foreign_line = legacy_line(foreign)
    (home / SPOOL_NAME).write_text(legacy_line(mine) + "\n" + foreign_line + "\n")
    result = await (await Spool.open(home, store)).replay(store)
    assert (result.written, result.unkeyed_kept, result.quarantined) == (1, 1, 0)
    assert (await row(store, mine) or {}).get("status") == "success"
    assert (home / SPOOL_NAME).read_text() == foreign_line + "\n"  # left as it was
    assert leftovers(home) == [SPOOL_NAME]


async def test_torn_line_is_set_aside_and_does_not_swallow_the_next_answer(store: Store, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    rec = await answer_for(store, "after a torn line")
    (home / SPOOL_NAME).write_bytes(b'{"response_id": "0000\xc3')  # a crash mid-write, mid-character
    spool = await Spool.open(home, store)
    spool.append(rec)
    result = await spool.replay(store)
    assert (result.written, result.torn) == (1, 1)
    assert leftovers(home) == ["spool.bad"]


async def test_identity_is_per_database_and_falls_back_without_pg_control_system(
    store: Store, store_b: Store, db_url: str
) -> None:
    a, b = await database_identity(store), await database_identity(store_b)
    a_again = await database_identity(store.pool)
    assert a == a_again and a != b
    assert a.kind == b.kind == "cluster" and a.value == b.value  # same server, two databases
    role = f"pa_spool_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON prompt_analyzer_migrations TO {}").format(sql.Identifier(role)))
    try:
        async def as_role() -> object:
            pool = await open_pool(resolve_target(psycopg.conninfo.make_conninfo(db_url, user=role)), max_size=1)
            try:
                return await database_identity(pool)
            finally:
                await pool.close()

        # a plain role may call pg_control_system() (PUBLIC has EXECUTE by default)
        assert await as_role() == a
        # where an operator revoked it (a function's ACL is per database: only this test database)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC")
        try:
            fallback, fallback_again = await as_role(), await as_role()
        finally:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO PUBLIC")
        assert isinstance(fallback, DatabaseIdentity)
        assert (fallback.kind, fallback.database) == ("migrated", a.database)
        assert fallback == fallback_again and fallback != a  # stable, and distinct from the other databases
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("REVOKE ALL ON prompt_analyzer_migrations FROM {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_answer_with_a_lone_surrogate_is_spooled(tmp_path: Path) -> None:
    """The spool must take every answer, even text no encoder takes (it is written as ASCII JSON)."""
    from prompt_analyzer.engine.spool import _decode, _encode

    text = json.loads('"half \\ud83d emoji"')
    rec = SuccessRecord(uuid.uuid4(), uuid.uuid4(), "m", text, 1, 1, 2, None, 5, {"raw": text}, [])
    line = _encode(rec, "db")
    assert line.isascii()
    assert _decode(json.loads(line)).response_text == text


async def test_a_replay_held_up_by_another_refuses_to_let_the_run_go_on(store: Store, tmp_path: Path) -> None:
    """While another process replays, going on would ask again pairs whose answers wait in the spool: the
    replay raises a temporary error (exit 75) instead of returning as if the spool were empty."""
    import fcntl
    import os

    from prompt_analyzer.engine.spool import LOCK_NAME, SpoolBusy

    home = tmp_path / "home"
    spool = await Spool.open(home, store)
    spool.append(await answer_for(store, "held up"))
    spool.lock_wait_s = 0.3
    fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "another process" holds the replay lock
        with pytest.raises(SpoolBusy, match="another process has been replaying"):
            await spool.replay(store)
    finally:
        os.close(fd)
    assert (await spool.replay(store)).written == 1  # once it is free, the answer is written
