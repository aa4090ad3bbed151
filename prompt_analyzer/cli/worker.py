"""`analyze worker`: join a batch from any machine that reaches the same database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from ..engine.runner import WORKER, BatchFinished
from ..engine.service import NotFound, default_key, find_batch
from ..engine.workers import prepare_join
from ..statuses import FINISHED
from ._context import invocation
from ._exec import EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE, execute, fail, say
from ._options import JsonOpt
from .database import database
from .hooks import Hooks
from .run import drive


def worker(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="Batch id or key (default: today's, daily:<UTC date>).")]
    = None,
    key: Annotated[str | None, typer.Option("--key", help="The batch's idempotency key.")] = None,
    json_mode: JsonOpt = False,
    of: Annotated[int, typer.Option("--of", min=1, hidden=True,
                                    help="Workers expected on the batch (set by run --workers).")] = 1,
    metrics_file: Annotated[Path | None, typer.Option("--metrics-file", help="Prometheus textfile output.")] = None,
    ping_url: Annotated[str | None, typer.Option("--ping-url", help="healthchecks.io-style ping URL.")] = None,
    notify_url: Annotated[str | None, typer.Option("--notify-url", help="POST the JSON summary here.")] = None,
) -> None:
    """Join a running batch as one more worker; the last worker to leave finishes it."""
    inv = invocation(ctx)
    if batch_id and key:
        fail(inv, "give a batch id or --key, not both", EXIT_USAGE)
    ref = batch_id or key or default_key()
    hooks = Hooks(metrics_file, None, ping_url, notify_url)

    async def go() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            try:
                batch = await find_batch(db, ref)
            except NotFound:  # the run that creates it has not started yet: a service manager tries again
                say(f"no batch {ref!r} yet: start it with `analyze run --key {ref}` (or wait for the one that will)")
                return EXIT_TEMPFAIL
            if batch.status in FINISHED:
                inv.batch_ended()
                say(f"batch {batch.idempotency_key or batch.id} has finished ({batch.status}); nothing to do")
                return EXIT_OK
            prep = await prepare_join(db, s, batch, role=WORKER, workers=of)
            try:
                return await drive(inv, db, prep, json_mode=json_mode)
            except BatchFinished as e:  # it finished while this worker started
                say(f"batch {e.batch.idempotency_key or e.batch.id} has finished ({e.batch.status}); nothing to do")
                return EXIT_OK

    started = time.monotonic()
    try:
        code = execute(inv, go)
    except typer.Exit as e:
        code = e.exit_code
    if inv.report is not None:  # this worker finished the batch: its hooks are the batch's
        asyncio.run(hooks.finish(code, time.monotonic() - started, inv.report))
    raise typer.Exit(code)
