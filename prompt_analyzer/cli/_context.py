"""What one `analyze` invocation carries from the global options to the command: typer's ``ctx.obj``.

Nothing here is module-level: each invocation builds its own :class:`Invocation` in the app callback, and
the signal handler reaches the running batch through the object it was given, not through a global.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

import typer

from ..config import Settings, load_settings
from ..engine.figures import BatchReport


class Phase(Enum):
    """What a SIGINT / SIGTERM does now (see ``_exec.on_signal``)."""

    SETUP = "setup"  # no batch started: the command ends
    BATCH = "batch"  # the runner stops cleanly
    DONE = "done"  # the batch ended: the signal is ignored until the process exits


class Stoppable(Protocol):
    def request_stop(self, reason: str) -> None: ...


@dataclass
class Invocation:
    config: Path | None = None  # --config
    debug: bool = False  # --debug: tracebacks instead of one line
    settings: Settings | None = None  # loaded on first use (the demo replaces them with its own)
    runner: Stoppable | None = None  # the batch being run, which a signal asks to stop cleanly
    phase: Phase = Phase.SETUP
    signal: str | None = None  # the signal that ended the command before a batch started
    report: BatchReport | None = None  # the last batch report, for metrics and the webhook

    def global_args(self) -> list[str]:
        """The global options a child ``analyze`` (a worker of ``run --workers``) is given."""
        return [*(["--config", str(self.config)] if self.config else []), *(["--debug"] if self.debug else [])]

    def load_settings(self) -> Settings:
        if self.settings is None:
            self.settings = load_settings(self.config)
        return self.settings

    def secrets(self) -> list[str]:
        """The configured secrets to scrub from output; none before the settings are loaded."""
        return self.settings.secrets() if self.settings else []

    def batch_started(self, runner: Stoppable) -> None:
        self.runner, self.phase = runner, Phase.BATCH

    def batch_ended(self) -> None:
        self.runner, self.phase = None, Phase.DONE  # from here on a signal is ignored


def invocation(ctx: typer.Context) -> Invocation:
    """The invocation a command runs in (set by the app callback; subcommands inherit ``ctx.obj``)."""
    return ctx.ensure_object(Invocation)  # defaults if a command is invoked without the callback (tests)
