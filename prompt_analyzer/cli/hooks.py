"""`analyze run`'s operations hooks: metrics file, Pushgateway, health pings, completion webhook.

The webhook's payload is the run's ``--json`` summary plus ``visibility``: the batch's headline figures per
project and brand (:meth:`prompt_analyzer.analytics.metrics.Report.headline`), left out if they cannot be
had within :data:`VISIBILITY_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from .. import ops
from ..analytics.metrics import NoBatch, compute_report
from ..db import Store
from ..engine.figures import BatchReport

log = logging.getLogger("prompt_analyzer")

VISIBILITY_TIMEOUT_S = 30.0  # the headline figures are a few reads; a stuck database must not hold the exit


class Hooks:
    """Metrics file, Pushgateway, health pings and the completion webhook: never fail the run."""

    def __init__(self, metrics_file: Path | None, pushgateway: str | None, ping_url: str | None,
                 notify_url: str | None) -> None:
        self.metrics_file, self.pushgateway, self.ping_url, self.notify_url = (
            metrics_file, pushgateway, ping_url, notify_url)
        self.run_id = str(uuid.uuid4())
        self._start: asyncio.Task[str | None] | None = None
        self.visibility: dict[str, Any] | None = None  # headline figures for the webhook

    async def add_visibility(self, store: Store, batch_id: uuid.UUID) -> None:
        """The batch's headline visibility figures for the webhook (only with one); never fails the run."""
        if not self.notify_url:
            return
        try:
            report = await asyncio.wait_for(compute_report(store, batch=batch_id), VISIBILITY_TIMEOUT_S)
            self.visibility = report.headline()
        except NoBatch:
            return  # no successful answer: nothing to tell
        except Exception as e:
            log.warning("notify: the visibility figures are left out: %s", e or type(e).__name__)

    def start(self) -> None:
        if self.ping_url:  # in the background: a slow endpoint never delays the run
            self._start = asyncio.create_task(ops.ping(self.ping_url, "start", run_id=self.run_id))

    async def join_start(self) -> None:
        if self._start is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                problem = await asyncio.wait_for(self._start, 35)
                if problem:
                    log.warning("%s", problem)

    async def finish(self, code: int, duration_s: float, report: BatchReport | None) -> None:
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
            payload = {**report, "visibility": self.visibility} if self.visibility is not None else report
            calls.append(ops.notify(self.notify_url, payload))
        if self.ping_url:
            calls.append(ops.ping(self.ping_url, code, run_id=self.run_id))
        for problem in await asyncio.gather(*calls):
            if problem:
                log.warning("%s", problem)
