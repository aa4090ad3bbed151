"""Numbered SQL migrations shipped in the package, applied once each, in order, under a lock."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from psycopg import AsyncConnection, sql

_LOCK_KEY = 0x70726F6D7074  # "prompt": two migrators at once serialise on this advisory lock

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS prompt_analyzer_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    out = []
    for entry in resources.files("prompt_analyzer.db").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            num, _, rest = entry.name.partition("_")
            out.append(Migration(int(num), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m.version)


async def migrate(conn: AsyncConnection[Any]) -> list[Migration]:
    """Apply what is missing; returns the migrations applied (empty: up to date)."""
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(_CREATE_TABLE)
        await conn.execute("ALTER TABLE prompt_analyzer_migrations ENABLE ROW LEVEL SECURITY")
        cur = await conn.execute("SELECT version FROM prompt_analyzer_migrations")
        done = {r["version"] if isinstance(r, dict) else r[0] for r in await cur.fetchall()}
        applied = []
        for m in available():
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql.SQL(m.sql))  # a trusted file shipped in the package
                await conn.execute(
                    "INSERT INTO prompt_analyzer_migrations (version, name) VALUES (%s, %s)", (m.version, m.name)
                )
            applied.append(m)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def pending(conn: AsyncConnection[Any]) -> list[Migration]:
    cur = await conn.execute("SELECT to_regclass('prompt_analyzer_migrations') AS t")
    row = await cur.fetchone()
    if row is None or (row["t"] if isinstance(row, dict) else row[0]) is None:
        return available()
    cur = await conn.execute("SELECT version FROM prompt_analyzer_migrations")
    done = {r["version"] if isinstance(r, dict) else r[0] for r in await cur.fetchall()}
    return [m for m in available() if m.version not in done]
