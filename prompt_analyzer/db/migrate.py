"""Numbered SQL migrations shipped in the package, applied once each, in order, under a lock.

A migration whose file holds the line ``-- @run-first`` runs before every other pending migration, in the
same transaction as the first of them (it prepares a database for them, and fails or succeeds with them);
such a file must be correct at any position (0002_legacy_columns.sql says why it needs this).

``migrate()`` returns the migrations it applied, in version order, as an :class:`Applied` list whose
``notices`` are what the operator must hear about (row level security newly hiding rows); each notice is
also logged as a warning.  :func:`migration_notices` reads them from any list ``migrate()`` returned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from psycopg import AsyncConnection, sql

log = logging.getLogger(__name__)

_LOCK_KEY = 0x70726F6D7074  # "prompt": two migrators at once serialise on this advisory lock
_RUN_FIRST = "-- @run-first"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS prompt_analyzer_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Tables of the schemas in the search path (where the migrations' unqualified names land) without row
# level security: the ones a migration may switch it on for.
_WITHOUT_RLS = """
SELECT c.oid::bigint AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname = ANY(current_schemas(false))
"""
_NOW_RLS = """
SELECT n.nspname, c.relname, c.oid::regclass::text AS name,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY(%s::bigint[]::oid[]) AND c.relrowsecurity ORDER BY 3
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def run_first(self) -> bool:
        return any(line.strip() == _RUN_FIRST for line in self.sql.splitlines())


class Applied(list[Migration]):
    """The migrations ``migrate()`` applied, in version order, and the notices for the operator."""

    def __init__(self, migrations: Iterable[Migration] = (), notices: Iterable[str] = ()) -> None:
        super().__init__(migrations)
        self.notices: list[str] = list(notices)


def migration_notices(applied: Sequence[Migration]) -> list[str]:
    """The notices of a list ``migrate()`` returned (none for any other list)."""
    return list(getattr(applied, "notices", ()))


def available() -> list[Migration]:
    out = []
    for entry in resources.files("prompt_analyzer.db").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            num, _, rest = entry.name.partition("_")
            out.append(Migration(int(num), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m.version)


def _value(row: Any, key: str, index: int) -> Any:
    return row[key] if isinstance(row, dict) else row[index]


def _groups(todo: list[Migration]) -> list[list[Migration]]:
    """Transactions in execution order: run-first migrations with the first other one, then one each."""
    first = [m for m in todo if m.run_first]
    rest = [m for m in todo if not m.run_first]
    return [first + rest[:1]] + [[m] for m in rest[1:]] if todo else []


async def migrate(conn: AsyncConnection[Any]) -> Applied:
    """Apply what is missing; returns the migrations applied (empty: up to date) with notices."""
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(_CREATE_TABLE)
        await conn.execute("ALTER TABLE prompt_analyzer_migrations ENABLE ROW LEVEL SECURITY")
        cur = await conn.execute("SELECT version FROM prompt_analyzer_migrations")
        done = {_value(r, "version", 0) for r in await cur.fetchall()}
        todo = [m for m in available() if m.version not in done]
        if not todo:
            return Applied()
        cur = await conn.execute(_WITHOUT_RLS)
        without_rls = [_value(r, "oid", 0) for r in await cur.fetchall()]
        for group in _groups(todo):
            async with conn.transaction():
                for m in group:
                    await conn.execute(sql.SQL(m.sql))  # a trusted file shipped in the package
                    await conn.execute(
                        "INSERT INTO prompt_analyzer_migrations (version, name) VALUES (%s, %s)",
                        (m.version, m.name),
                    )
        notices = await _rls_notices(conn, without_rls)
        for text in notices:
            log.warning("%s", text, extra={"event": "rls_enabled"})
        return Applied(todo, notices)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _rls_notices(conn: AsyncConnection[Any], without_rls: list[int]) -> list[str]:
    """Tables the migrations just put under row level security that hold rows: roles that do not bypass it
    (on Supabase: anon and authenticated, i.e. the application's users through the API) stop seeing them."""
    cur = await conn.execute(_NOW_RLS, (without_rls,))
    notices = []
    for r in await cur.fetchall():
        nsp, rel, name, policies = (_value(r, k, i) for i, k in enumerate(("nspname", "relname", "name", "policies")))
        cur = await conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {}) AS x").format(sql.Identifier(nsp, rel))
        )
        row = await cur.fetchone()
        if row is None or not _value(row, "x", 0):
            continue
        has = "it has no policy" if policies == 0 else f"only its {policies} existing policies apply"
        notices.append(
            f"{name}: row level security is now enabled and the table holds rows; {has}, so roles that do not "
            f"bypass it (on Supabase: anon and authenticated) no longer see or change them. If the application "
            f"reads this table with those roles, add a policy for them, e.g. CREATE POLICY {rel}_read ON {name} "
            f"FOR SELECT TO authenticated USING (...) (docs/operations.md, Upgrading)"
        )
    return notices


async def pending(conn: AsyncConnection[Any]) -> list[Migration]:
    cur = await conn.execute("SELECT to_regclass('prompt_analyzer_migrations') AS t")
    row = await cur.fetchone()
    if row is None or _value(row, "t", 0) is None:
        return available()
    cur = await conn.execute("SELECT version FROM prompt_analyzer_migrations")
    done = {_value(r, "version", 0) for r in await cur.fetchall()}
    return [m for m in available() if m.version not in done]
