"""`analyze score`: recompute the brand mentions of stored answers with the brands as they are now.

No API call: only the stored text and sources are read.  Answers scored before with other brand
definitions (an alias added, a domain removed) are rescored, and the command says how many and what changed.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from ..analytics.scoring import ScoreResult, score
from ..engine.service import find_batch
from ..report import print_json
from ._context import invocation
from ._exec import EXIT_OK, EXIT_USAGE, execute, fail, finish, out
from ._options import BatchRefOpt, JsonOpt, SinceOpt, uuid_of
from .database import database


def describe(r: ScoreResult, what: str) -> str:
    """One line (two when history changed) saying what a scoring did."""
    text = f"scored {r.answers} answer(s) of {what}: {r.mentions} brand mention(s)"
    if r.first_time:
        text += f"; {r.first_time} scored for the first time"
    if r.rescored:
        text += f"; {r.rescored} rescored because the brands changed since they were scored"
    if r.changed:
        moves = ", ".join(f"{name} +{c.gained} -{c.lost}" for name, c in sorted(r.brands.items())
                          if c.gained or c.lost)
        text += f"\nhistory changed: {r.changed} answer(s) have other mentions, ranks or cited brands"
        text += f" ({moves})" if moves else ""
    elif r.answers:
        text += "; nothing changed"
    return text


def score_cmd(
    ctx: typer.Context,
    batch: BatchRefOpt = None,
    since: SinceOpt = None,
    project: Annotated[uuid.UUID | None, typer.Option(
        "--project", help="Only this project's answers.", parser=uuid_of("--project", blank=True))] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Recompute brand mentions from stored answers (all of them by default), no API calls."""
    inv = invocation(ctx)
    if batch and since:
        fail(inv, "give --batch or --since, not both", EXIT_USAGE)

    async def go() -> int:
        async with database(inv) as db:
            batch_id = (await find_batch(db, batch)).id if batch else None
            what = f"batch {batch}" if batch else f"batches since {since.isoformat()}" if since else "all batches"
            r = await score(db.store.pool, batch_id=batch_id, since=since,
                            project_ids=[project] if project else [])
            if json_mode:
                print_json({"run_id": r.run_id, "answers": r.answers, "first_time": r.first_time,
                            "rescored": r.rescored, "changed": r.changed, "mentions": r.mentions,
                            "changes": r.changes_json()})
            else:
                out.print(describe(r, what), markup=False)
            return EXIT_OK

    finish(execute(inv, go))

