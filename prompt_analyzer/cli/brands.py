"""`analyze brands`: add, update, list, remove and import the brands a project tracks (its own and competitors).

A change to a project's brands changes what its stored answers mention: the project's history is rescored
at once (no API call) and the command says what changed; ``--no-score`` leaves that to `analyze score`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg_pool import AsyncConnectionPool

from ..analytics.scoring import score
from ..brands import check_brand, read_brand_file
from ..db.analytics import AnalyticsStore, BrandConflict, BrandRow
from ..engine.service import NotFound
from ..prompts import InputError
from ..report import print_json
from ._context import invocation
from ._exec import EXIT_OK, execute, finish, out, say
from ._options import JsonOpt, uuid_of
from .database import database
from .score import describe

app = typer.Typer(no_args_is_help=True, help="Manage tracked brands (your own and competitors).")

ProjectOpt = Annotated[uuid.UUID, typer.Option("--project", help="Project UUID.", parser=uuid_of("--project"))]
NoScoreOpt = Annotated[bool, typer.Option("--no-score", help="Do not rescore the project's history now.")]


def _brand_json(b: BrandRow) -> dict[str, object]:
    return {"id": str(b.id), "project_id": str(b.project_id), "name": b.name, "aliases": b.aliases,
            "domains": b.domains, "own": b.is_own, "match_case": b.match_case}


async def _rescore(pool: AsyncConnectionPool[Any], projects: Sequence[uuid.UUID], no_score: bool) -> None:
    """Rescore the history of ``projects`` after their brands changed, and say what changed."""
    if no_score:
        say("history not rescored (--no-score): `analyze score` rescores it")
        return
    say(describe(await score(pool, project_ids=list(projects)), "the project's history"))


def _conflict(e: BrandConflict) -> InputError:
    return InputError(str(e))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The brand's name as answers write it.")],
    project: ProjectOpt,
    alias: Annotated[list[str] | None, typer.Option("--alias", "-a", help="Another name (repeatable).")] = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", "-d", help="Its site, e.g. acme.com (repeatable).")]
    = None,
    own: Annotated[bool, typer.Option("--own", help="The project's own brand (default: a competitor).")] = False,
    match_case: Annotated[bool, typer.Option(
        "--match-case", help="Match every name and alias only as written (a brand named like a common word).")]
    = False,
    no_score: NoScoreOpt = False,
) -> None:
    """Track a brand or competitor."""
    inv = invocation(ctx)
    new = check_brand(project, name, alias or [], domain or [], own=own, match_case=match_case)

    async def go() -> int:
        async with database(inv) as db:
            try:
                row = (await AnalyticsStore(db.store.pool).add_brands([new]))[0]
            except BrandConflict as e:
                raise _conflict(e) from None
            out.print(str(row.id))
            await _rescore(db.store.pool, [project], no_score)
            return EXIT_OK

    finish(execute(inv, go))


@app.command("update")
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The brand's name.")],
    project: ProjectOpt,
    alias: Annotated[list[str] | None, typer.Option("--alias", "-a", help="Add an alias (repeatable).")] = None,
    drop_alias: Annotated[list[str] | None, typer.Option("--drop-alias", help="Remove an alias (repeatable).")]
    = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", "-d", help="Add a domain (repeatable).")] = None,
    drop_domain: Annotated[list[str] | None, typer.Option("--drop-domain", help="Remove a domain (repeatable).")]
    = None,
    own: Annotated[bool | None, typer.Option("--own/--competitor", help="Own brand or competitor.")] = None,
    match_case: Annotated[bool | None, typer.Option("--match-case/--any-case", help="How its terms match.")] = None,
    no_score: NoScoreOpt = False,
) -> None:
    """Change a brand's aliases, domains or flags (then its project's history is rescored)."""
    inv = invocation(ctx)
    checked = check_brand(project, name, alias or [], domain or [])
    drop_domains = list(check_brand(project, name, (), drop_domain or []).domains)

    async def go() -> int:
        async with database(inv) as db:
            try:
                row = await AnalyticsStore(db.store.pool).update_brand(
                    project, checked.name, add_aliases=checked.aliases, drop_aliases=drop_alias or [],
                    add_domains=checked.domains, drop_domains=drop_domains, is_own=own, match_case=match_case)
            except BrandConflict as e:
                raise _conflict(e) from None
            if row is None:
                raise NotFound(f"project {project} has no brand {name!r}")
            out.print(f"{row.name}: aliases {', '.join(row.aliases) or '-'}; domains {', '.join(row.domains) or '-'}",
                      markup=False)
            await _rescore(db.store.pool, [project], no_score)
            return EXIT_OK

    finish(execute(inv, go))


@app.command("list")
def list_brands(
    ctx: typer.Context,
    project: Annotated[uuid.UUID | None, typer.Option(
        "--project", help="Only this project.", parser=uuid_of("--project", blank=True))] = None,
    json_mode: JsonOpt = False,
) -> None:
    """List tracked brands, the own brand first."""
    inv = invocation(ctx)

    async def go() -> int:
        async with database(inv) as db:
            rows = await AnalyticsStore(db.store.pool).list_brands(project)
            if json_mode:
                print_json({"brands": [_brand_json(b) for b in rows]})
                return EXIT_OK
            for b in rows:
                flags = " [own]" if b.is_own else ""
                flags += " [match case]" if b.match_case else ""
                extra = f"  aliases: {', '.join(b.aliases)}" if b.aliases else ""
                extra += f"  domains: {', '.join(b.domains)}" if b.domains else ""
                out.print(f"{b.id}  {b.project_id}  {b.name}{flags}{extra}", markup=False)
            return EXIT_OK

    finish(execute(inv, go))


@app.command("remove")
def remove(
    ctx: typer.Context,
    brand: Annotated[str, typer.Argument(help="The brand's name or id.")],
    project: Annotated[uuid.UUID | None, typer.Option(
        "--project", help="The brand's project (needed when several projects track that name).",
        parser=uuid_of("--project", blank=True))] = None,
    no_score: NoScoreOpt = False,
) -> None:
    """Stop tracking a brand: its mention rows go, and the project's history is rescored."""
    inv = invocation(ctx)

    async def go() -> int:
        async with database(inv) as db:
            rows = await AnalyticsStore(db.store.pool).remove_brand(project, brand)
            if not rows:
                raise NotFound(f"no brand {brand!r}" + (f" in project {project}" if project else ""))
            if len(rows) > 1:
                raise InputError(f"{len(rows)} projects track a brand {brand!r}: give --project or the brand's id")
            out.print(f"removed {rows[0].name} ({rows[0].id})", markup=False)
            await _rescore(db.store.pool, [rows[0].project_id], no_score)
            return EXIT_OK

    finish(execute(inv, go))


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file.")],
    no_score: NoScoreOpt = False,
) -> None:
    """Import brands: CSV `project_id,name[,aliases][,domains][,own][,match_case]` (lists separated by ';')
    or JSON Lines; all or nothing."""
    inv = invocation(ctx)

    async def go() -> int:
        brands = read_brand_file(file)
        async with database(inv) as db:
            try:
                rows = await AnalyticsStore(db.store.pool).add_brands(brands)
            except BrandConflict as e:
                raise InputError(f"{file.name}: {e}; nothing imported") from None
            out.print(f"imported {len(rows)} brands from {file.name}", markup=False)
            await _rescore(db.store.pool, sorted({b.project_id for b in rows}, key=str), no_score)
            return EXIT_OK

    finish(execute(inv, go))
