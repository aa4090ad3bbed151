"""Database access: connection targets, the embedded default server, migrations and the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..config import Settings
from .connect import BadDatabaseUrl, DatabaseError, DatabaseUnavailable, Target, open_pool, resolve_target, unavailable
from .embedded import EmbeddedError, EmbeddedPostgres
from .migrate import Migration, migrate, pending
from .store import (
    BatchRow,
    CitationRow,
    NewPrompt,
    PairWork,
    Picked,
    PlanRow,
    PlatformHistory,
    PlatformSpend,
    Store,
    SuccessRecord,
)

__all__ = [
    "BadDatabaseUrl", "BatchRow", "CitationRow", "Database", "DatabaseError", "DatabaseUnavailable", "EmbeddedError",
    "NewPrompt", "PairWork", "Picked", "PlanRow", "PlatformHistory", "PlatformSpend", "SchemaOutdated",
    "Store", "SuccessRecord", "open_database",
]


class SchemaOutdated(DatabaseError):
    """The configured database lacks migrations of this version (exit 2)."""


@dataclass
class Database:
    store: Store
    target: Target
    embedded: EmbeddedPostgres | None
    description: str
    applied: list[Migration] = field(default_factory=list)  # migrations applied when it was opened

    async def close(self) -> None:
        await self.store.close()
        if self.embedded is not None:
            self.embedded.release()


async def open_database(
    settings: Settings, *, auto_migrate: bool | None = None, say: Callable[[str], Any] | None = None,
    pool_max: int | None = None,
) -> Database:
    """Connect to DATABASE_URL or start the embedded server; say once which database is in use.

    The embedded database is migrated automatically; a configured one only when ``auto_migrate``
    (a customer's database is upgraded on purpose, with ``analyze db migrate``), but a run refuses to
    start on a schema that lacks our migrations.
    """
    embedded = None
    if settings.database.url is None:
        embedded = EmbeddedPostgres(settings.home / "postgres")
        try:
            url = embedded.start()
        except (EmbeddedError, OSError) as e:
            raise DatabaseUnavailable(f"embedded PostgreSQL under {embedded.home}: {e}") from None
        description = f"embedded PostgreSQL in {embedded.home}"
        if auto_migrate is None:
            auto_migrate = True
    else:
        url = settings.database.url.get()
        description = ""
    try:
        target = resolve_target(url, settings.database.pooler)
        if embedded is None:
            pooler = " (transaction pooler)" if target.transaction_pooler else ""
            description = f"PostgreSQL at {target.where}{pooler}"
        if say:
            say(f"database: {description}")
        pool = await open_pool(target, max_size=pool_max or settings.database.pool_max)
    except BaseException:
        if embedded is not None:
            embedded.release()
        raise
    store = Store(pool)
    db = Database(store, target, embedded, description)
    try:
        async with pool.connection() as conn:
            if auto_migrate:
                db.applied = await migrate(conn)
            elif await pending(conn):
                raise SchemaOutdated(
                    f"the database at {target.where} needs migrations: run `analyze db migrate` first"
                )
    except psycopg.OperationalError as e:
        await db.close()
        raise unavailable(target, e) from None
    except BaseException:
        await db.close()
        raise
    return db
