"""`analyze db migrate`: applies the migrations, then says the schema is up to date."""

from __future__ import annotations

from collections.abc import Callable

from ..harness import Env


async def test_db_migrate_twice(env: Env, make_database: Callable[[], str]) -> None:
    url = make_database()
    first = await env.analyze("db", "migrate", DATABASE_URL=url)
    assert first.code == 0 and "applied 0001_schema" in first.stdout, first.stderr
    second = await env.analyze("db", "migrate", DATABASE_URL=url)
    assert second.code == 0 and "up to date" in second.stdout and "applied" not in second.stdout
