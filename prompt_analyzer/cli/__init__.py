"""The `analyze` command: parse, call the engine, render.  No SQL, no wire formats.

Exit codes (contract): 0 every call succeeded; 1 the batch finished with failed calls; 2 usage or
configuration error; 75 temporary (database unreachable, batch run by another process);
130 / 143 interrupted by SIGINT / SIGTERM after a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from .. import __version__, ops
from ..config import PLATFORMS, ConfigError, Secret, Settings
from ..db import (
    BadDatabaseUrl,
    Database,
    DatabaseError,
    DatabaseUnavailable,
    NewPrompt,
    SchemaOutdated,
    open_database,
)
from ..db.migrate import available
from ..engine.runner import BatchLocked
from ..engine.service import (
    BatchFinished,
    NotFound,
    Prepared,
    batch_report,
    default_key,
    find_batch,
    prepare_prompt,
    prepare_rerun,
    prepare_run,
)
from ..logs import setup_logging
from ..prompts import InputError, check_text, parse_platforms, parse_uuid, read_import_file
from ..redact import scrub
from ..report import make_reporter, print_json, render_prompt_result
from ._context import Invocation, Phase, invocation

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TEMPFAIL, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 75, 130, 143

app = typer.Typer(
    name="analyze", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Ask OpenAI, Gemini, Claude and Perplexity every tracked prompt; store answers, cost and sources.",
)
prompts_app = typer.Typer(no_args_is_help=True, help="Manage tracked prompts.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(prompts_app, name="prompts")
app.add_typer(db_app, name="db")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
log = logging.getLogger("prompt_analyzer")


def _fail(inv: Invocation, message: str, code: int) -> NoReturn:
    err.print(f"error: {scrub(message, inv.secrets())}", markup=False)
    raise typer.Exit(code)


def _on_signal(inv: Invocation, name: str, cancel: Callable[[], object]) -> None:
    """SIGINT / SIGTERM by phase: before a batch starts the command just ends (``cancel``); a running
    batch stops cleanly (a second signal cuts the grace period short); once the batch has ended the
    signal is ignored, so the summary prints and the exit code is the batch's."""
    if inv.phase is Phase.BATCH:
        if inv.runner is not None:
            inv.runner.request_stop(name)
    elif inv.phase is Phase.SETUP and inv.signal is None:
        inv.signal = name
        cancel()


async def _with_signals(inv: Invocation, fn: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine with SIGINT / SIGTERM handled by :func:`_on_signal` for ``inv``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def handler(name: str) -> None:  # the invocation is reached through this closure, not a global
        _on_signal(inv, name, task.cancel)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler, sig.name)
    try:
        return await fn()
    except asyncio.CancelledError:
        if inv.signal is None:
            raise
        err.print(f"interrupted by {inv.signal} before the batch started; nothing was called")
        return EXIT_SIGINT if inv.signal == "SIGINT" else EXIT_SIGTERM
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            if inv.phase is Phase.DONE:  # the metrics, pings and the exit still to come ignore them too
                signal.signal(sig, signal.SIG_IGN)


def _execute(inv: Invocation, fn: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine and turn every expected failure into one line and an exit code."""
    try:
        return asyncio.run(_with_signals(inv, fn))
    except typer.Exit:
        raise
    except (ConfigError, InputError, BadDatabaseUrl, SchemaOutdated, NotFound) as e:
        if isinstance(e, InputError) and e.problems:
            err.print(f"error: {e}", markup=False)
            for line, reason in e.problems[:50]:
                err.print(f"  line {line}: {reason}", markup=False)
            if len(e.problems) > 50:
                err.print(f"  ... and {len(e.problems) - 50} more", markup=False)
            raise typer.Exit(EXIT_USAGE) from None
        _fail(inv, str(e), EXIT_USAGE)
    except (DatabaseUnavailable, BatchLocked) as e:
        _fail(inv, str(e), EXIT_TEMPFAIL)
    except DatabaseError as e:
        _fail(inv, str(e), EXIT_TEMPFAIL)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_SIGINT) from None
    except Exception as e:
        if inv.debug:
            raise
        log.debug("unexpected error", exc_info=True)
        _fail(inv, f"unexpected {type(e).__name__}: {e} (run with --debug for details)", EXIT_FAILED)


def _version(value: bool) -> None:
    if value:
        out.print(f"prompt-analyzer {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config (default $PROMPT_ANALYZER_CONFIG)")]
    = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")] = False,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (one object per line).")] = "text",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    inv = ctx.obj = Invocation(config=config, debug=debug)
    if log_format not in ("text", "json"):
        _fail(inv, f"--log-format must be text or json, got {log_format!r}", EXIT_USAGE)
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if quiet:
        level = logging.ERROR
    setup_logging(level=level, fmt=log_format, secrets=inv.secrets)


def _say(text: str) -> None:
    err.print(text, markup=False)


async def _open(inv: Invocation, auto_migrate: bool | None = None) -> Database:
    return await open_database(inv.load_settings(), auto_migrate=auto_migrate, say=_say)


# ---------------------------------------------------------------------------------- batches

PlatformOpt = Annotated[list[str] | None, typer.Option("--platform", "-p", help=f"One of {', '.join(PLATFORMS)}.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout at the end.")]


async def _drive(inv: Invocation, db: Database, prep: Prepared, *, json_mode: bool) -> int:
    """Run a prepared batch with signals, live progress and the summary; returns the exit code."""
    runner = prep.runner
    inv.batch_started(runner)
    for name in prep.skipped:
        log.warning("%s: not configured (no API key), skipped", name,
                    extra={"event": "platform_skipped", "platform": name, "batch": prep.batch["id"]})
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
        if not started:
            reporter.start(prep.batch, runner.progress, resumed=not prep.created)
        reporter.tick(runner.progress)
    finally:
        inv.batch_ended()
        if ticker:
            ticker.cancel()
        reporter.stop()
        await runner.aclose()
    report = await batch_report(db, outcome.batch, outcome)
    inv.report = report
    if json_mode:
        print_json(report)
    else:
        reporter.summary(report)
    if outcome.status == "interrupted":  # the batch's status decides, not a signal that came after it
        return EXIT_SIGINT if outcome.interrupted_by == "SIGINT" else EXIT_SIGTERM
    return EXIT_OK if outcome.status == "completed" else EXIT_FAILED


@app.command()
def run(
    ctx: typer.Context,
    project: Annotated[list[str] | None, typer.Option("--project", help="Only this project (repeatable).")] = None,
    platform: PlatformOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N prompts.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key (default daily:<UTC date>).")] = None,
    json_mode: JsonOpt = False,
    metrics_file: Annotated[Path | None, typer.Option("--metrics-file", help="Prometheus textfile output.")] = None,
    ping_url: Annotated[str | None, typer.Option("--ping-url", help="healthchecks.io-style ping URL.")] = None,
    pushgateway: Annotated[str | None, typer.Option("--pushgateway", help="Prometheus Pushgateway URL.")] = None,
    notify_url: Annotated[str | None, typer.Option("--notify-url", help="POST the JSON summary here.")] = None,
) -> None:
    """Run one batch over the active prompts; the same --key resumes an unfinished batch."""
    inv = invocation(ctx)
    projects = [parse_uuid(p, "--project") for p in project or []]
    platforms = parse_platforms(platform or []) or []
    batch_key = key or default_key()

    hooks = _Hooks(metrics_file, pushgateway, ping_url, notify_url)

    async def go() -> int:
        hooks.start()
        try:
            return await run_batch()
        finally:
            await hooks.join_start()

    async def run_batch() -> int:
        s = inv.load_settings()
        db = await _open(inv)
        try:
            try:
                prep = await prepare_run(
                    db, s, key=batch_key, trigger="schedule" if key is None else "manual", platforms=platforms,
                    project_ids=projects, limit=limit,
                )
            except BatchFinished as e:
                b = e.batch
                msg = (f"batch {b['idempotency_key']} already finished ({b['status']}, "
                       f"{b['completed_jobs']}/{b['total_jobs']} prompts completed). "
                       f"Rerun its failures with `analyze rerun {b['id']}`, or start a new batch with --key.")
                inv.report = await batch_report(db, b)
                inv.phase = Phase.DONE
                if json_mode:
                    print_json(inv.report)
                _say(msg)
                return EXIT_OK if b["status"] == "completed" else EXIT_FAILED
            return await _drive(inv, db, prep, json_mode=json_mode)
        finally:
            await db.close()

    started = time.monotonic()
    try:
        code = _execute(inv, go)
    except typer.Exit as e:
        code = e.exit_code
    asyncio.run(hooks.finish(code, time.monotonic() - started, inv.report))
    raise typer.Exit(code)


class _Hooks:
    """Metrics file, Pushgateway, health pings and the completion webhook: never fail the run."""

    def __init__(self, metrics_file: Path | None, pushgateway: str | None, ping_url: str | None,
                 notify_url: str | None) -> None:
        self.metrics_file, self.pushgateway, self.ping_url, self.notify_url = (
            metrics_file, pushgateway, ping_url, notify_url)
        self.run_id = str(uuid.uuid4())
        self._start: asyncio.Task[str | None] | None = None

    def start(self) -> None:
        if self.ping_url:  # in the background: a slow endpoint never delays the run
            self._start = asyncio.create_task(ops.ping(self.ping_url, "start", run_id=self.run_id))

    async def join_start(self) -> None:
        if self._start is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                problem = await asyncio.wait_for(self._start, 35)
                if problem:
                    log.warning("%s", problem)

    async def finish(self, code: int, duration_s: float, report: dict[str, Any] | None) -> None:
        text = ops.render_metrics(
            report or {}, now=time.time(), duration_s=duration_s,
            previous=ops.read_previous(self.metrics_file) if self.metrics_file else None, exit_code=code,
        )
        if self.metrics_file:
            try:
                ops.write_metrics_file(self.metrics_file, text)
            except OSError as e:
                log.warning("metrics file %s could not be written: %s", self.metrics_file, e.strerror or e)
        calls: list[Awaitable[str | None]] = []
        if self.pushgateway:
            calls.append(ops.push_metrics(self.pushgateway, text))
        if self.notify_url and report is not None:
            calls.append(ops.notify(self.notify_url, report))
        if self.ping_url:
            calls.append(ops.ping(self.ping_url, code, run_id=self.run_id))
        for problem in await asyncio.gather(*calls):
            if problem:
                log.warning("%s", problem)


def _finish(code: int) -> None:
    raise typer.Exit(code)


@app.command("prompt")
def prompt_cmd(
    ctx: typer.Context,
    prompt_id: Annotated[str, typer.Argument(help="The prompt's id.")],
    platform: PlatformOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Run one prompt now and show each platform's answer."""
    inv = invocation(ctx)
    pid = parse_uuid(prompt_id, "prompt id")
    platforms = parse_platforms(platform or []) or []

    async def go() -> int:
        s = inv.load_settings()
        db = await _open(inv)
        try:
            prep = await prepare_prompt(db, s, pid, platforms)
            code = await _drive(inv, db, prep, json_mode=json_mode)
            job = await db.store.job_for_prompt(prep.batch["id"], pid)
            if job is not None and not json_mode:
                render_prompt_result(out, await db.store.responses_for_job(job["id"]))
            return code
        finally:
            await db.close()

    _finish(_execute(inv, go))


@app.command()
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
        _fail(inv, "give a batch id or --last, not both", EXIT_USAGE)
    platforms = parse_platforms(platform or []) or []

    async def go() -> int:
        s = inv.load_settings()
        db = await _open(inv)
        try:
            batch = await find_batch(db, batch_id)
            prep = await prepare_rerun(db, s, batch, platforms)
            return await _drive(inv, db, prep, json_mode=json_mode)
        finally:
            await db.close()

    _finish(_execute(inv, go))


@app.command()
def status(
    ctx: typer.Context,
    batch_id: Annotated[str | None, typer.Argument(help="Batch id or key (default: --last).")] = None,
    last: Annotated[bool, typer.Option("--last", help="The most recent batch.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """A batch's figures by platform."""
    inv = invocation(ctx)
    if batch_id and last:
        _fail(inv, "give a batch id or --last, not both", EXIT_USAGE)

    async def go() -> int:
        db = await _open(inv)
        try:
            batch = await find_batch(db, batch_id)
            report = await batch_report(db, batch)
            if json_mode:
                print_json(report)
            else:
                make_reporter(json_mode=False).summary(report)
            return EXIT_OK
        finally:
            await db.close()

    _finish(_execute(inv, go))


DEMO_DATABASE_ENV = "PROMPT_ANALYZER_DEMO_DATABASE_URL"


@app.command()
def demo(
    ctx: typer.Context,
    prompts: Annotated[int, typer.Option("--prompts", min=1, help="Sample prompts to seed if none exist.")] = 12,
    profile: Annotated[str, typer.Option("--profile", help="Simulator profile: realistic or fast.")] = "realistic",
    json_mode: JsonOpt = False,
) -> None:
    """The whole pipeline on the embedded database and the built-in provider simulator.

    Never uses DATABASE_URL: runs on the embedded database, or on $PROMPT_ANALYZER_DEMO_DATABASE_URL if set.
    """
    from ..simulator import SimulatorConfig, SimulatorConfigError, start_simulator

    inv = invocation(ctx)
    try:
        sim_config = SimulatorConfig.for_profile(profile)
    except SimulatorConfigError as e:
        _fail(inv, f"--profile: {e}", EXIT_USAGE)

    demo_url = (os.environ.get(DEMO_DATABASE_ENV) or "").strip()

    async def go() -> int:
        s = inv.load_settings()
        if demo_url:
            database = replace(s.database, url=Secret(demo_url))
        else:
            if s.database.url is not None:
                _say("the demo ignores DATABASE_URL (its answers are simulated) and uses the embedded database; "
                     f"set {DEMO_DATABASE_ENV} to run it on another database")
            database = replace(s.database, url=None)
        s = replace(s, database=database)
        sim = await start_simulator(sim_config)
        try:
            plats = dict(s.platforms)
            for name in PLATFORMS:
                rpm = sim_config.platform(name).rpm
                plats[name] = replace(
                    plats[name], enabled=True, base_url=sim.base_urls[name], api_key=Secret("sim-demo-key"),
                    rpm=rpm or 600_000.0, api="sonar" if name == "perplexity" else plats[name].api,
                )
            demo_settings = replace(s, platforms=plats)
            inv.settings = demo_settings
            _say(f"simulator: {sim.url} (profile {profile}; answers are simulated)")
            db = await _open(inv)
            try:
                if await db.store.count_active_prompts() == 0:
                    seeded = await db.store.import_prompts(_sample_prompts(prompts))
                    _say(f"seeded {seeded} sample prompts in the demo project")
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                prep = await prepare_run(
                    db, demo_settings, key=f"demo:{stamp}", trigger="demo", extra_metadata={"simulated": True}
                )
                return await _drive(inv, db, prep, json_mode=json_mode)
            finally:
                await db.close()
        finally:
            await sim.stop()

    _finish(_execute(inv, go))


DEMO_PROJECT = "00000000-0000-4000-8000-00000000d3e0"
_SAMPLE = [
    "What is the best project management tool for a remote team of 20?",
    "Which CRM do small B2B startups recommend in 2026?",
    "Best running shoes for flat feet under $150",
    "What are the most reliable electric SUVs for cold climates?",
    "Which password manager is safest for families?",
    "Top open-source alternatives to Slack",
    "How do I choose a Postgres hosting provider for a SaaS app?",
    "What is the best note-taking app for researchers?",
    "Which email marketing platform has the best deliverability?",
    "Best budget mechanical keyboard for programming",
    "What are good accounting tools for freelancers in Europe?",
    "Which cloud GPU provider is cheapest for fine-tuning small models?",
]


def _sample_prompts(n: int) -> list[NewPrompt]:
    project = uuid.UUID(DEMO_PROJECT)
    return [
        NewPrompt(project, _SAMPLE[i % len(_SAMPLE)] + (f" (variant {i // len(_SAMPLE) + 1})" if i >= len(_SAMPLE)
                                                         else ""))
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------- db

@db_app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Apply migrations; a no-op when up to date."""
    inv = invocation(ctx)

    async def go() -> int:
        db = await _open(inv, auto_migrate=True)
        try:
            for m in db.applied:
                out.print(f"applied {m.version:04d}_{m.name}", markup=False)
            if not db.applied:
                out.print(f"database schema is up to date ({len(available())} migrations)")
            return EXIT_OK
        finally:
            await db.close()

    _finish(_execute(inv, go))


# ---------------------------------------------------------------------------------- prompts

@prompts_app.command("add")
def prompts_add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The prompt text.")],
    project: Annotated[str, typer.Option("--project", help="Project UUID.")],
    platform: PlatformOpt = None,
) -> None:
    """Track a new prompt."""
    inv = invocation(ctx)
    s = _settings_or_exit(inv)
    new = NewPrompt(parse_uuid(project, "--project"), check_text(text, s.run.max_prompt_chars),
                    platforms=parse_platforms(platform or []))

    async def go() -> int:
        db = await _open(inv)
        try:
            row = await db.store.add_prompt(new)
            out.print(str(row["id"]))
            return EXIT_OK
        finally:
            await db.close()

    _finish(_execute(inv, go))


@prompts_app.command("import")
def prompts_import(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file.")]
) -> None:
    """Import prompts: CSV `project_id,prompt_text[,is_active][,platforms]` or JSON Lines; all or nothing."""
    inv = invocation(ctx)
    s = _settings_or_exit(inv)

    async def go() -> int:
        parsed = read_import_file(file, s.run.max_prompt_chars)
        db = await _open(inv)
        try:
            n = await db.store.import_prompts(parsed.prompts)
            out.print(f"imported {n} prompts from {file.name}", markup=False)
            return EXIT_OK
        finally:
            await db.close()

    _finish(_execute(inv, go))


@prompts_app.command("list")
def prompts_list(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Include inactive prompts.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """List tracked prompts (paged from the database; any number of prompts)."""
    inv = invocation(ctx)
    projects = [parse_uuid(project, "--project")] if project else []

    async def go() -> int:
        s = inv.load_settings()
        db = await _open(inv)
        try:
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
        finally:
            await db.close()

    _finish(_execute(inv, go))


@prompts_app.command("deactivate")
def prompts_deactivate(
    ctx: typer.Context, prompt_id: Annotated[str, typer.Argument(help="The prompt's id.")]
) -> None:
    """Stop tracking a prompt (its history stays)."""
    inv = invocation(ctx)
    pid = parse_uuid(prompt_id, "prompt id")

    async def go() -> int:
        db = await _open(inv)
        try:
            if not await db.store.deactivate_prompt(pid):
                raise NotFound(f"no prompt {pid}")
            out.print(f"deactivated {pid}")
            return EXIT_OK
        finally:
            await db.close()

    _finish(_execute(inv, go))


def _settings_or_exit(inv: Invocation) -> Settings:
    try:
        return inv.load_settings()
    except ConfigError as e:
        _fail(inv, str(e), EXIT_USAGE)


def main() -> None:
    """Entry point: bad input anywhere (even while parsing options) gives one line and exit 2."""
    try:
        app()
    except (InputError, ConfigError) as e:
        err.print(f"error: {e}", markup=False)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(EXIT_SIGINT)

