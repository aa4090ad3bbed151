"""`analyze db`: database maintenance."""

from __future__ import annotations

import typer

from ..db.migrate import available
from ._context import invocation
from ._exec import EXIT_OK, execute, finish, out
from .database import database

app = typer.Typer(no_args_is_help=True, help="Database maintenance.")


@app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Apply migrations; a no-op when up to date."""
    inv = invocation(ctx)

    async def go() -> int:
        async with database(inv, auto_migrate=True) as db:
            for m in db.applied:
                out.print(f"applied {m.version:04d}_{m.name}", markup=False)
            if not db.applied:
                out.print(f"database schema is up to date ({len(available())} migrations)")
            return EXIT_OK

    finish(execute(inv, go))
