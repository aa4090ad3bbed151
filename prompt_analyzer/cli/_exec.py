"""How a command runs: its coroutine under SIGINT / SIGTERM handling, every expected failure turned into
one line on stderr and an exit code (the contract's), and nothing else.

Exit codes (contract): 0 every call succeeded; 1 the batch finished with failed calls; 2 usage or
configuration error; 75 temporary (database unreachable, batch run by another process);
130 / 143 interrupted by SIGINT / SIGTERM after a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import NoReturn

import typer
from rich.console import Console

from ..config import ConfigError, Settings
from ..db import BadDatabaseUrl, DatabaseError, DatabaseUnavailable, SchemaOutdated
from ..engine.runner import BatchLocked
from ..engine.service import NotFound
from ..prompts import InputError
from ..redact import scrub
from ._context import Invocation, Phase

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TEMPFAIL, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 75, 130, 143

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
log = logging.getLogger("prompt_analyzer")


def say(text: str) -> None:
    """A line for the operator on stderr (stdout is kept for results and --json)."""
    err.print(text, markup=False)


def fail(inv: Invocation, message: str, code: int) -> NoReturn:
    err.print(f"error: {scrub(message, inv.secrets())}", markup=False)
    raise typer.Exit(code)


def finish(code: int) -> NoReturn:
    raise typer.Exit(code)


def settings_or_exit(inv: Invocation) -> Settings:
    try:
        return inv.load_settings()
    except ConfigError as e:
        fail(inv, str(e), EXIT_USAGE)


def on_signal(inv: Invocation, name: str, cancel: Callable[[], object]) -> None:
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
    """Run a command's coroutine with SIGINT / SIGTERM handled by :func:`on_signal` for ``inv``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def handler(name: str) -> None:  # the invocation is reached through this closure, not a global
        on_signal(inv, name, task.cancel)

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
        sigs = {signal.SIGINT, signal.SIGTERM}
        # Blocked while the handlers are swapped: removing ours restores the default (die) for an instant,
        # and a signal landing in that instant would kill a process whose batch has already finished.
        signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            for sig in sigs:
                loop.remove_signal_handler(sig)
                if inv.phase is Phase.DONE:  # the metrics, pings and the exit still to come ignore them too
                    signal.signal(sig, signal.SIG_IGN)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)


def execute(inv: Invocation, fn: Callable[[], Awaitable[int]]) -> int:
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
        fail(inv, str(e), EXIT_USAGE)
    except (DatabaseUnavailable, BatchLocked) as e:
        fail(inv, str(e), EXIT_TEMPFAIL)
    except DatabaseError as e:
        fail(inv, str(e), EXIT_TEMPFAIL)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_SIGINT) from None
    except Exception as e:
        if inv.debug:
            raise
        log.debug("unexpected error", exc_info=True)
        fail(inv, f"unexpected {type(e).__name__}: {e} (run with --debug for details)", EXIT_FAILED)
