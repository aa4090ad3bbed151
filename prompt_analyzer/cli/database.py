"""The one way a command opens the database: ``async with database(inv) as db: ...``; always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..db import Database, open_database
from ._context import Invocation
from ._exec import say


@asynccontextmanager
async def database(inv: Invocation, auto_migrate: bool | None = None) -> AsyncIterator[Database]:
    """The database of the invocation's settings (the demo's, once it has set them); closed on the way out,
    whatever happened inside.  ``auto_migrate``: None migrates the embedded database only (see open_database)."""
    db = await open_database(inv.load_settings(), auto_migrate=auto_migrate, say=say)
    try:
        yield db
    finally:
        await db.close()
