"""The batch commands: run, prompt, rerun, status; and :func:`drive`, which runs a prepared batch."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import Settings
from ..db import Database, DatabaseUnavailable
from ..engine.estimate import Estimate, estimate_run
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
    usable_platforms,
)
from ..engine.workers import WorkerProcesses, prepare_join, supervise
from ..prompts import parse_platforms
from ..providers import preload
from ..providers.pricing import usd_amount
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
from ._options import JsonOpt, OptionError, PlatformOpt, PromptIdArg, choice, uuid_of
from .database import database
from .hooks import Hooks


class RunMode(Enum):
    live = "live"
    batch = "batch"  # the providers' batch APIs (docs/batch-mode.md)


def _bad_mode(value: str) -> str:
    return f"--mode must be {' or '.join(m.value for m in RunMode)}, got {value!r}"


async def drive(inv: Invocation, db: Database, prep: Prepared, *, json_mode: bool) -> int:
    """Run a prepared batch with signals, live progress and the summary; returns the exit code."""
    runner = prep.runner
    inv.batch_started(runner)
    for name in prep.skipped:
        log.warning("%s: not configured (no API key), skipped", name,
                    extra={"event": "platform_skipped", "platform": name, "batch": prep.batch.id})
    for note in prep.notes:
        say(f"batch mode: {note}")
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
    if outcome.status == "interrupted" and not outcome.interrupted_by:
        return EXIT_FAILED  # batch mode: a provider expired or cancelled requests; the same key resumes them
    if outcome.status == "interrupted" or (outcome.status == "submitted" and outcome.interrupted_by):
        # the batch's status decides, not a signal that came after it
        return EXIT_SIGINT if outcome.interrupted_by == "SIGINT" else EXIT_SIGTERM
    if outcome.status == "submitted":  # batch mode: at the providers; `analyze collect` or the key takes it up
        if not json_mode:
            ref = f"--key {prep.batch.idempotency_key}" if prep.batch.idempotency_key else str(prep.batch.id)
            say(f"submitted to the providers' batch APIs; collect with `analyze collect {ref}`")
        return EXIT_OK
    return EXIT_OK if outcome.status == "completed" else EXIT_FAILED


def _usd_amount(value: Any) -> Decimal:
    """``--max-cost-usd``: a non-negative number of dollars, else one line and exit 2."""
    try:
        return usd_amount(value)
    except ValueError as e:
        raise OptionError(f"--max-cost-usd {e} of USD, got {value!r}") from None


MaxCostOpt = Annotated[Decimal | None, typer.Option(
    "--max-cost-usd", parser=_usd_amount, metavar="USD",
    help="Budget for the batch over all its runs (in place of the config's run.max_cost_usd).")]


def with_budget(settings: Settings, max_cost_usd: Decimal | None) -> Settings:
    """The settings with ``--max-cost-usd`` in place of ``[run] max_cost_usd``."""
    if max_cost_usd is None:
        return settings
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, max_cost_usd=max_cost_usd))


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def render_estimate(est: Estimate) -> None:
    """The dry run's table on stdout (plain columns: it is read in terminals, logs and mail alike), then
    what it is based on and the budget's verdict."""
    lines = [f"estimate for batch {est.key}" + (f": {est.note}" if est.note else " (a new batch)")]
    row = "{:<12} {:>8} {:>12} {:>12} {:>12} {:>16} {:>20}  {}"
    lines.append(row.format("platform", "calls", "tokens in", "tokens out", "cost live", "cost batch", "duration",
                            "tokens from"))
    for name, p in est.platforms.items():
        basis = ", ".join(f"{what} {n:,}" for what, n in p.basis.items() if n) or "-"
        lines.append(row.format(name, f"{p.calls:,}", f"{p.input_tokens:,}", f"{p.output_tokens:,}",
                                _usd(p.cost_live_usd), _usd(p.cost_batch_usd) + ("" if p.batch_api else " (live)"),
                                f"{p.duration_s:,.0f} s ({p.bound_by})", basis))
    ins = sum(p.input_tokens for p in est.platforms.values())
    lines.append(row.format("total", f"{est.calls:,}", f"{ins:,}", f"{est.tokens - ins:,}", _usd(est.cost_live_usd),
                            _usd(est.cost_batch_usd), f"{est.duration_s:,.0f} s", ""))
    for line in lines:
        out.print(line.rstrip(), markup=False)
    out.print("tokens from: the pair's own answers in recent batches, else the platform's, else the defaults "
              "(prompt length / 4 in, 400 out); duration at the rpm, tpm and max_concurrency in force", markup=False)
    for name in est.unpriced:
        out.print(f"{name}: no price known for its model: its cost is not in the totals", markup=False)
    if est.max_cost_usd is not None or est.platform_budgets:
        over = est.over_budget()
        spent = f"already spent {_usd(est.spent_usd)}; " if est.spent_usd else ""
        verdict = (f"the budget would stop the run ({', '.join(over)}): pairs left `budget_exhausted`" if over
                   else "within budget")
        out.print(f"budget: {spent}{verdict}", markup=False)
    out.print("dry run: nothing was called and nothing was written", markup=False)


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
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the calls, tokens, cost and duration it would take; call and write nothing.")] = False,
    max_cost_usd: MaxCostOpt = None,
    mode: Annotated[RunMode | None, typer.Option(
        "--mode", help="live, or batch: the providers' batch APIs at their batch price (default: [run] mode).",
        parser=choice(RunMode, _bad_mode))] = None,
    detach: Annotated[bool, typer.Option(
        "--detach", help="Batch mode: submit, then exit 0 with status submitted; collect later.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, max=256, help="Run the batch with N local worker processes.")] = None,
) -> None:
    """Run one batch over the active prompts; the same --key resumes an unfinished batch."""
    inv = invocation(ctx)
    projects = project or []
    platforms = (parse_platforms(platform, inv.load_settings().platform_names) if platform else None) or []
    batch_key = key or default_key()
    if max_cost_usd is not None:
        inv.settings = with_budget(inv.load_settings(), max_cost_usd)

    if dry_run:
        async def estimate() -> int:
            s = inv.load_settings()
            usable, _ = usable_platforms(s, platforms)
            async with database(inv, auto_migrate=False) as db:  # a dry run writes nothing, not even migrations
                est = await estimate_run(db.store, s, key=batch_key, platforms=usable, project_ids=projects,
                                         limit=limit)
            if json_mode:
                print_json(est.to_json())
            else:
                render_estimate(est)
            return EXIT_OK

        finish(execute(inv, estimate))

    hooks = Hooks(metrics_file, pushgateway, ping_url, notify_url)

    async def go() -> int:
        hooks.start()
        try:
            return await run_batch()
        finally:
            await hooks.join_start()

    async def run_batch() -> int:
        s = inv.load_settings()
        kinds = [s.platform(p).kind_name for p in (platforms or s.platform_names) if s.platform(p).enabled]
        if not workers:  # with workers, this process calls nothing: their fork server imports the clients
            preload(kinds)
        async with database(inv) as db:
            try:
                prep = await prepare_run(
                    db, s, key=batch_key, trigger="schedule" if key is None else "manual", platforms=platforms,
                    project_ids=projects, limit=limit, mode=mode.value if mode else None, detach=detach,
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
                # Only now, with the batch made: an early exit (no database, nothing to do) leaves no server.
                WorkerProcesses.warm(kinds)
                await prep.runner.aclose()
                prep = replace(await prepare_join(db, s, prep.batch, role=SUPERVISOR, workers=workers),
                               created=prep.created, skipped=prep.skipped)
                supervise(prep.runner, WorkerProcesses(workers, prep.batch.id, global_args=inv.global_args(),
                                                       kinds=kinds))
            code = await drive(inv, db, prep, json_mode=json_mode)
            await hooks.add_visibility(db.store, prep.batch.id)
            return code

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
    max_cost_usd: MaxCostOpt = None,
) -> None:
    """Call again only the failed or unfinished (prompt, platform) pairs of a batch."""
    inv = invocation(ctx)
    if max_cost_usd is not None:
        inv.settings = with_budget(inv.load_settings(), max_cost_usd)
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
