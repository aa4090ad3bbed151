"""`analyze prompts`: add, import, list and deactivate tracked prompts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from ..db import NewPrompt
from ..engine.service import NotFound
from ..prompts import check_text, parse_platforms, read_import_file
from ..report import print_json
from ._context import invocation
from ._exec import EXIT_OK, execute, finish, out, settings_or_exit
from ._options import JsonOpt, PlatformOpt, PromptIdArg, uuid_of
from .database import database

app = typer.Typer(no_args_is_help=True, help="Manage tracked prompts.")


@app.command("add")
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The prompt text.")],
    project: Annotated[uuid.UUID, typer.Option("--project", help="Project UUID.", parser=uuid_of("--project"))],
    platform: PlatformOpt = None,
) -> None:
    """Track a new prompt."""
    inv = invocation(ctx)
    s = settings_or_exit(inv)
    new = NewPrompt(project, check_text(text, s.run.max_prompt_chars),
                    platforms=parse_platforms(platform or [], s.platform_names))

    async def go() -> int:
        async with database(inv) as db:
            row = await db.store.add_prompt(new)
            out.print(str(row["id"]))
            return EXIT_OK

    finish(execute(inv, go))


@app.command("import")
def import_file(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file.")]
) -> None:
    """Import prompts: CSV `project_id,prompt_text[,is_active][,platforms]` or JSON Lines; all or nothing."""
    inv = invocation(ctx)
    s = settings_or_exit(inv)

    async def go() -> int:
        parsed = read_import_file(file, s.run.max_prompt_chars, s.platform_names)
        async with database(inv) as db:
            n = await db.store.import_prompts(parsed.prompts)
            out.print(f"imported {n} prompts from {file.name}", markup=False)
            return EXIT_OK

    finish(execute(inv, go))


@app.command("list")
def list_prompts(
    ctx: typer.Context,
    project: Annotated[uuid.UUID | None, typer.Option(
        "--project", help="Only this project.", parser=uuid_of("--project", blank=True))] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Include inactive prompts.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """List tracked prompts (paged from the database; any number of prompts)."""
    inv = invocation(ctx)
    projects = [project] if project else []

    async def go() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            async for r in db.store.iter_prompts(
                project_ids=projects, include_inactive=inactive, page_size=s.run.page_size
            ):
                if json_mode:
                    print_json({"id": r["id"], "project_id": r["project_id"], "prompt_text": r["prompt_text"],
                                "is_active": r["is_active"], "platforms": r["platforms"]})
                else:
                    flag = "" if r["is_active"] else " [inactive]"
                    plats = f" [{','.join(r['platforms'])}]" if r["platforms"] else ""
                    text = r["prompt_text"].replace("\n", " ")
                    print(f"{r['id']}  {r['project_id']}{flag}{plats}  {text[:100]}")
            return EXIT_OK

    finish(execute(inv, go))


@app.command("deactivate")
def deactivate(
    ctx: typer.Context, prompt_id: PromptIdArg
) -> None:
    """Stop tracking a prompt (its history stays)."""
    inv = invocation(ctx)

    async def go() -> int:
        async with database(inv) as db:
            if not await db.store.deactivate_prompt(prompt_id):
                raise NotFound(f"no prompt {prompt_id}")
            out.print(f"deactivated {prompt_id}")
            return EXIT_OK

    finish(execute(inv, go))
