"""Opening the database for a command."""

from __future__ import annotations

from ..db import Database, open_database
from ._context import Invocation
from ._exec import say


async def open_db(inv: Invocation, auto_migrate: bool | None = None) -> Database:
    return await open_database(inv.load_settings(), auto_migrate=auto_migrate, say=say)
