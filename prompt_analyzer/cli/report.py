"""`analyze report`: the visibility metrics of a batch (or of the batches since a date) as terminal tables,
JSON, CSV files or a self-contained HTML page.  No SQL, no formatting: the metrics are
:func:`prompt_analyzer.analytics.metrics.compute_report`'s, the output the renderers'."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..analytics.metrics import NoBatch, compute_report
from ..analytics.render_csv import write_csv
from ..analytics.render_html import write_html
from ..analytics.render_terminal import render_terminal
from ._context import invocation
from ._exec import EXIT_OK, EXIT_USAGE, execute, fail, finish, out, say
from ._options import JsonOpt, OptionError, uuid_of
from .database import database

PIPE_WIDTH = 200


def parse_since(value: object) -> datetime | None:
    """``--since``: an ISO date (midnight UTC) or date and time (UTC unless it says otherwise)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise OptionError(f"--since is not a date (YYYY-MM-DD or an ISO date and time): {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def report(
    ctx: typer.Context,
    project: Annotated[uuid.UUID | None, typer.Option(
        "--project", help="Only this project.", parser=uuid_of("--project"))] = None,
    last: Annotated[bool, typer.Option("--last", help="The last batch with answers (the default).")] = False,
    batch: Annotated[uuid.UUID | None, typer.Option(
        "--batch", help="This batch.", parser=uuid_of("--batch"))] = None,
    since: Annotated[datetime | None, typer.Option(
        "--since", help="Every batch started since this date (YYYY-MM-DD), pooled.", parser=parse_since,
        metavar="DATE")] = None,
    json_mode: JsonOpt = False,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Write one CSV file per table into DIR.",
                                                 metavar="DIR")] = None,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML page with charts.",
                                                   metavar="FILE")] = None,
) -> None:
    """Visibility of the tracked brands: mentions, share of voice, rank and citations, with 95% intervals."""
    inv = invocation(ctx)
    if sum((last, batch is not None, since is not None)) > 1:
        fail(inv, "give one of --last, --batch and --since", EXIT_USAGE)

    async def go() -> int:
        async with database(inv) as db:
            try:
                rep = await compute_report(db.store, project=project, batch=batch, since=since)
            except NoBatch as e:
                fail(inv, f"nothing to report: {e}", EXIT_USAGE)
        try:
            if csv_dir is not None:
                paths = write_csv(rep, csv_dir)
                say(f"wrote {len(paths)} CSV files to {csv_dir}")
            if html_file is not None:
                write_html(rep, html_file)
                say(f"wrote {html_file}")
        except OSError as e:
            fail(inv, f"cannot write {e.filename or csv_dir or html_file}: {e.strerror or e}", EXIT_USAGE)
        if json_mode:
            print(json.dumps(rep.to_json(), ensure_ascii=False), flush=True)
        else:  # piped or redirected: wide enough that no cell wraps
            render_terminal(rep, out if out.is_terminal else Console(width=PIPE_WIDTH, highlight=False))
        return EXIT_OK

    finish(execute(inv, go))
