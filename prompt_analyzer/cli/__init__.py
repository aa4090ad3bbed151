"""The `analyze` command: parse, call the engine, render.  No SQL, no wire formats.

One module per command group (typer's one-file-per-command layout): :mod:`.run` (run, prompt, rerun,
status), :mod:`.collect` (batch mode's ``collect``), :mod:`.demo`, :mod:`.doctor`, :mod:`.prompts` (``prompts ...``),
:mod:`.db` (``db migrate``), :mod:`.brands` (``brands ...``), :mod:`.score`; :mod:`._exec` maps failures
to one line and the contract's exit code and handles signals; :mod:`._context` is what an invocation
carries in typer's ``ctx.obj``.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ..config import ConfigError
from ..logs import setup_logging
from ..prompts import InputError
from . import brands, collect, db, demo, doctor, prompts, report, run, score, worker
from ._context import Invocation
from ._exec import EXIT_SIGINT, EXIT_USAGE, err, out
from ._options import OptionError, choice

__all__ = ["app", "main"]

app = typer.Typer(
    name="analyze", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Ask OpenAI, Gemini, Claude and Perplexity every tracked prompt; store answers, cost and sources.",
)
app.command()(run.run)
app.command("prompt")(run.prompt_cmd)
app.command()(run.rerun)
app.command()(run.status)
app.command()(collect.collect)
app.command()(demo.demo)
app.command()(report.report)
app.command()(doctor.doctor)
app.command()(worker.worker)
app.add_typer(prompts.app, name="prompts")
app.add_typer(db.app, name="db")
app.add_typer(brands.app, name="brands")
app.command("score")(score.score_cmd)


class LogFormat(Enum):
    text = "text"
    json = "json"  # one object per line


def _bad_log_format(value: str) -> str:
    return f"--log-format must be {' or '.join(f.value for f in LogFormat)}, got {value!r}"


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
    log_format: Annotated[LogFormat, typer.Option(
        "--log-format", help="text or json (one object per line).", parser=choice(LogFormat, _bad_log_format))]
    = LogFormat.text,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    inv = ctx.obj = Invocation(config=config, debug=debug)
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if quiet:
        level = logging.ERROR
    setup_logging(level=level, fmt=log_format.value, secrets=inv.secrets)


def main() -> None:
    """Entry point: bad input anywhere (even while parsing options) gives one line and exit 2."""
    try:
        app()
    except (InputError, ConfigError, OptionError) as e:
        err.print(f"error: {e}", markup=False)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(EXIT_SIGINT)
