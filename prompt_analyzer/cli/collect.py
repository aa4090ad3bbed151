"""`analyze collect`: write the answers of finished provider batches (batch mode, docs/batch-mode.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..engine.service import batch_report, find_batch, prepare_collect
from ..report import make_reporter, print_json
from ._context import invocation
from ._exec import EXIT_OK, EXIT_USAGE, execute, fail, finish, say
from ._options import JsonOpt
from .database import database


def collect(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="Batch id or key (default: --last).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="The batch of this idempotency key.")] = None,
    last: Annotated[bool, typer.Option("--last", help="The most recent batch.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Collect a batch's finished provider batches; those still at the provider stay open (status submitted)."""
    from .run import drive

    inv = invocation(ctx)
    if sum(bool(x) for x in (batch_id, key, last)) > 1:
        fail(inv, "give one of a batch id, --key or --last", EXIT_USAGE)

    async def go() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            batch = await find_batch(db, batch_id or key)
            prep = await prepare_collect(db, s, batch)
            if prep is None:
                inv.report = await batch_report(db, batch)
                if json_mode:
                    print_json(inv.report)
                else:
                    say(f"batch {batch.idempotency_key or batch.id}: no provider batch to collect ({batch.status})")
                    make_reporter(json_mode=False).summary(inv.report)
                return EXIT_OK
            return await drive(inv, db, prep, json_mode=json_mode)

    finish(execute(inv, go))
