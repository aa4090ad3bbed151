"""Test databases on a real PostgreSQL.

``PROMPT_ANALYZER_TEST_DSN`` names a server to use (e.g. postgresql://postgres@127.0.0.1:5432/postgres);
unset, an embedded server is started once under a per-user directory in /tmp and reused by later runs.
Each test gets a clean schema: one migrated database per session, truncated before each test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from prompt_analyzer.db import Store
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.db.embedded import EmbeddedPostgres
from prompt_analyzer.db.migrate import migrate

TABLES = ("ai_response_citations, ai_responses, analysis_jobs, analysis_batches, prompt_tracking, "
          "tracked_brands, ai_response_mentions, ai_response_scores, mention_score_runs, platform_daily_usage")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    dsn = os.environ.get("PROMPT_ANALYZER_TEST_DSN")
    if dsn:
        yield dsn
        return
    home = Path(tempfile.gettempdir()) / f"prompt-analyzer-test-{os.getuid()}"
    server = EmbeddedPostgres(home)
    url = server.start()
    yield url.replace("/prompt_analyzer?", "/postgres?")
    server.release()


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a new empty database on the test server, dropped at the end of the session."""
    created: list[str] = []

    def make() -> str:
        name = f"pa_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return make_conninfo(pg_admin_url, dbname=name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def migrated_url(make_database: Callable[[], str]) -> str:
    url = make_database()

    async def go() -> None:
        conn = await psycopg.AsyncConnection.connect(url, row_factory=psycopg.rows.dict_row)
        await migrate(conn)
        await conn.close()

    asyncio.run(go())
    return url


@pytest.fixture
def db_url(migrated_url: str) -> str:
    """A migrated database with every table empty."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(TABLES)))
    return migrated_url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    pool = await open_pool(resolve_target(db_url), max_size=20)
    s = Store(pool)
    yield s
    await s.close()


@pytest.fixture
def server_home() -> Iterator[Path]:
    """A home for an embedded server outside pytest's temporary root.

    Run as root, the server runs as its own system user, which must traverse the path to its data
    directory; pytest resets its root (/tmp/pytest-of-<user>) to mode 0700 whenever a pytest session
    starts, so a server kept there becomes unreachable as soon as another session begins.
    """
    home = Path(tempfile.mkdtemp(prefix="pa-test-pg-"))
    home.chmod(0o711)
    try:
        yield home / "pg"
    finally:
        shutil.rmtree(home, ignore_errors=True)


from tests.engine.redis_server import own_redis  # noqa: E402,F401  (a Redis server a test may kill)
from tests.harness import env, sim  # noqa: E402,F401  (shared fixtures for CLI tests)
