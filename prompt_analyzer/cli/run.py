"""The batch commands: run, prompt, rerun, status; and :func:`drive`, which runs a prepared batch."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..db import Database, DatabaseUnavailable
from ..engine.runner import SUPERVISOR
from ..engine.service import (
    BatchFinished,
    Prepared,
    batch_report,
    default_key,
    find_batch,
    prepare_prompt,
    prepare_rerun,
    prepare_run,
)
from ..engine.workers import WorkerProcesses, prepare_join, supervise
from ..prompts import parse_platforms
from ..report import make_reporter, print_json, render_prompt_result
from ._context import Invocation, invocation
from ._exec import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    execute,
    fail,
    finish,
    log,
    out,
    say,
)
from ._options import JsonOpt, PlatformOpt, PromptIdArg, uuid_of
from .database import database
from .hooks import Hooks


async def drive(inv: Invocation, db: Database, prep: Prepared, *, json_mode: bool) -> int:
    """Run a prepared batch with signals, live progress and the summary; returns the exit code."""
    runner = prep.runner
    inv.batch_started(runner)
    for name in prep.skipped:
        log.warning("%s: not configured (no API key), skipped", name,
                    extra={"event": "platform_skipped", "platform": name, "batch": prep.batch.id})
    reporter = make_reporter(json_mode=json_mode, quiet=logging.getLogger().level >= logging.ERROR)
    ticker: asyncio.Task[None] | None = None
    try:
        started = False

        async def tick() -> None:
            nonlocal started
            while True:
                await asyncio.sleep(0.25)
                if not started and runner.progress.total:
                    reporter.start(prep.batch, runner.progress, resumed=not prep.created)
                    started = True
                if started:
                    reporter.tick(runner.progress)

        ticker = asyncio.create_task(tick())
        try:
            outcome = await runner.execute(prep.batch)
        except DatabaseUnavailable as e:
            if runner.spool is not None and runner.spool.count:
                raise DatabaseUnavailable(
                    f"{e}; {runner.spool.count} answer(s) received meanwhile are kept in {runner.spool.path} "
                    "and will be written by the next run"
                ) from None
            raise
        if outcome.last or started:
            if not started:
                reporter.start(prep.batch, runner.progress, resumed=not prep.created)
            reporter.tick(runner.progress)
    finally:
        inv.batch_ended()
        if ticker:
            ticker.cancel()
        reporter.stop()
        await runner.aclose()
    if not outcome.last:  # other workers are still on the batch: the last of them gives the summary
        say(f"this worker's part of batch {prep.batch.idempotency_key or prep.batch.id} is done "
            f"({runner.calls} calls); the workers still on it finish it")
        if outcome.interrupted_by:
            return EXIT_SIGINT if outcome.interrupted_by == "SIGINT" else EXIT_SIGTERM
        return EXIT_OK
    report = await batch_report(db, outcome.batch, outcome)
    inv.report = report
    if json_mode:
        print_json(report)
    else:
        reporter.summary(report)
    if outcome.status == "interrupted":  # the batch's status decides, not a signal that came after it
        return EXIT_SIGINT if outcome.interrupted_by == "SIGINT" else EXIT_SIGTERM
    return EXIT_OK if outcome.status == "completed" else EXIT_FAILED


def run(
    ctx: typer.Context,
    project: Annotated[list[uuid.UUID] | None, typer.Option(
        "--project", help="Only this project (repeatable).", parser=uuid_of("--project"))] = None,
    platform: PlatformOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N prompts.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key (default daily:<UTC date>).")] = None,
    json_mode: JsonOpt = False,
    metrics_file: Annotated[Path | None, typer.Option("--metrics-file", help="Prometheus textfile output.")] = None,
    ping_url: Annotated[str | None, typer.Option("--ping-url", help="healthchecks.io-style ping URL.")] = None,
    pushgateway: Annotated[str | None, typer.Option("--pushgateway", help="Prometheus Pushgateway URL.")] = None,
    notify_url: Annotated[str | None, typer.Option("--notify-url", help="POST the JSON summary here.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, max=256, help="Run the batch with N local worker processes.")] = None,
) -> None:
    """Run one batch over the active prompts; the same --key resumes an unfinished batch."""
    inv = invocation(ctx)
    projects = project or []
    platforms = (parse_platforms(platform, inv.load_settings().platform_names) if platform else None) or []
    batch_key = key or default_key()

    hooks = Hooks(metrics_file, pushgateway, ping_url, notify_url)

    async def go() -> int:
        hooks.start()
        try:
            return await run_batch()
        finally:
            await hooks.join_start()

    async def run_batch() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            try:
                prep = await prepare_run(
                    db, s, key=batch_key, trigger="schedule" if key is None else "manual", platforms=platforms,
                    project_ids=projects, limit=limit,
                )
            except BatchFinished as e:
                b = e.batch
                msg = (f"batch {b.idempotency_key} already finished ({b.status}, "
                       f"{b.completed_jobs}/{b.total_jobs} prompts completed). "
                       f"Rerun its failures with `analyze rerun {b.id}`, or start a new batch with --key.")
                inv.report = await batch_report(db, b)
                inv.batch_ended()  # nothing to run: a signal is ignored from here on
                if json_mode:
                    print_json(inv.report)
                say(msg)
                return EXIT_OK if b.status == "completed" else EXIT_FAILED
            if workers:
                await prep.runner.aclose()
                prep = replace(await prepare_join(db, s, prep.batch, role=SUPERVISOR, workers=workers),
                               created=prep.created, skipped=prep.skipped)
                supervise(prep.runner, WorkerProcesses(workers, prep.batch.id, global_args=inv.global_args()))
            return await drive(inv, db, prep, json_mode=json_mode)

    started = time.monotonic()
    try:
        code = execute(inv, go)
    except typer.Exit as e:
        code = e.exit_code
    asyncio.run(hooks.finish(code, time.monotonic() - started, inv.report))
    raise typer.Exit(code)


def prompt_cmd(
    ctx: typer.Context,
    prompt_id: PromptIdArg,
    platform: PlatformOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Run one prompt now and show each platform's answer."""
    inv = invocation(ctx)
    platforms = (parse_platforms(platform, inv.load_settings().platform_names) if platform else None) or []

    async def go() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            prep = await prepare_prompt(db, s, prompt_id, platforms)
            code = await drive(inv, db, prep, json_mode=json_mode)
            job = await db.store.job_for_prompt(prep.batch.id, prompt_id)
            if job is not None and not json_mode:
                render_prompt_result(out, await db.store.responses_for_job(job["id"]))
            return code

    finish(execute(inv, go))


def rerun(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="Batch id or key (default: --last).")] = None,
    last: Annotated[bool, typer.Option("--last", help="The most recent batch.")] = False,
    platform: PlatformOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Call again only the failed or unfinished (prompt, platform) pairs of a batch."""
    inv = invocation(ctx)
    if batch_id and last:
        fail(inv, "give a batch id or --last, not both", EXIT_USAGE)
    platforms = (parse_platforms(platform, inv.load_settings().platform_names) if platform else None) or []

    async def go() -> int:
        s = inv.load_settings()
        async with database(inv) as db:
            batch = await find_batch(db, batch_id)
            prep = await prepare_rerun(db, s, batch, platforms)
            return await drive(inv, db, prep, json_mode=json_mode)

    finish(execute(inv, go))


def status(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="Batch id or key (default: --last).")] = None,
    last: Annotated[bool, typer.Option("--last", help="The most recent batch.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """A batch's figures by platform."""
    inv = invocation(ctx)
    if batch_id and last:
        fail(inv, "give a batch id or --last, not both", EXIT_USAGE)

    async def go() -> int:
        async with database(inv) as db:
            batch = await find_batch(db, batch_id)
            report = await batch_report(db, batch)
            if json_mode:
                print_json(report)
            else:
                make_reporter(json_mode=False).summary(report)
            return EXIT_OK

    finish(execute(inv, go))
