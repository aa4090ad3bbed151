"""``analyze run --workers N``: N local worker processes on one batch, supervised by the parent.

The parent creates the batch once, takes its coordinator role (a second ``analyze run`` on it exits
75), starts N ``analyze worker BATCH_ID`` processes (:class:`WorkerProcesses`) and waits for them, then
for any worker of another machine, and finishes the batch once: status, counters, metrics, webhook and
the one summary are the parent's.  The workers coordinate through rows (:mod:`..db.batch_lock`), not
through the parent: a worker killed with ``kill -9`` is replaced by the others taking over its pairs
once its lease expires.

Each worker runs in a session of its own, so a Ctrl-C on the terminal reaches the parent only, which
passes every SIGINT / SIGTERM on to each worker once: the grace period applies to each, and a second
signal cuts it short for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess
from typing import Any

from ..config import Settings
from ..db import BatchRow, Database
from ..db.batch_lock import SUPERVISOR, WORKER
from ..platforms import KINDS
from .runner import Runner
from .service import Prepared, provider_factory, replay_spool, usable_platforms
from .spool import Spool

log = logging.getLogger("prompt_analyzer.engine")

_EXIT_WAIT_S = 10.0  # after SIGKILL, how long a worker process may take to be reaped
_CONTEXT = multiprocessing.get_context("forkserver")


ENTRY = "prompt_analyzer.cli:main"  # the `analyze` command a worker process runs


def _worker(argv: Sequence[str]) -> None:
    """A worker process: its own session (a terminal's Ctrl-C reaches the parent only), no stdout (the
    summary is the parent's), then ``analyze <argv>``."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.argv = ["analyze", *argv]
    module, _, name = ENTRY.partition(":")
    getattr(importlib.import_module(module), name)()


class WorkerProcesses:
    """N ``analyze worker`` processes on one batch, forked from a server that has already imported the
    command and the platforms' clients and SDKs: started as fresh interpreters, N workers would each
    import them again (about 3.5 s of CPU each; on a 2-core machine, seconds before the slowest
    platform's first call).  Each worker is a child of that fork server, not of this process."""

    def __init__(self, n: int, batch_id: uuid.UUID, *, global_args: Sequence[str] = (),
                 kinds: Iterable[str] = ()) -> None:
        self.n = n
        self.batch_id = batch_id
        self.global_args = list(global_args)
        self.kinds = list(kinds)
        self.procs: list[BaseProcess] = []

    @staticmethod
    def warm(kinds: Iterable[str]) -> None:
        """Start the fork server now: it imports the command and the clients of ``kinds`` (platform
        kinds, :data:`..platforms.KINDS`) while the caller connects and creates the batch."""
        modules = [ENTRY.partition(":")[0], *dict.fromkeys(KINDS[k].module for k in kinds if k in KINDS)]
        _CONTEXT.set_forkserver_preload(modules)
        forkserver.ensure_running()

    def argv(self) -> list[str]:
        return [*self.global_args, "worker", str(self.batch_id), "--of", str(self.n)]

    async def start(self) -> None:
        self.warm(self.kinds)  # a no-op once the server runs
        for _ in range(self.n):
            proc = _CONTEXT.Process(target=_worker, args=(self.argv(),), name="analyze worker")
            # The first start launches the fork server, which imports `preload` before it forks.
            await asyncio.to_thread(proc.start)
            self.procs.append(proc)
        log.info("started %d worker processes: %s", self.n, " ".join(str(p.pid) for p in self.procs),
                 extra={"event": "workers_started", "batch": self.batch_id})

    def forward(self, reason: str) -> None:
        """Pass a SIGINT / SIGTERM on to every worker still running."""
        sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}.get(reason)
        if sig is None:
            return
        for proc in self.procs:
            if proc.exitcode is None and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)

    async def wait(self) -> list[int]:
        """Wait for every worker to exit; their exit codes (negative: killed by that signal)."""
        codes = list(await asyncio.gather(*(_exited(p) for p in self.procs)))
        for proc, code in zip(self.procs, codes, strict=True):
            if code not in (0, 1, 130, 143):
                log.warning("worker process %d exited with %s; the other workers take over its pairs",
                            proc.pid, f"signal {-code}" if code < 0 else code,
                            extra={"event": "worker_lost", "batch": self.batch_id})
        return codes

    async def kill_all(self) -> None:
        """Leftovers (the parent is ending): killed; their claims expire with their leases."""
        for proc in self.procs:
            if proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_exited(proc), _EXIT_WAIT_S)


async def _exited(proc: BaseProcess) -> int:
    """The process's exit code, once it has exited (its sentinel becomes readable), without a thread."""
    if proc.exitcode is None:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(proc.sentinel, readable)
        try:
            await ended
        finally:
            loop.remove_reader(proc.sentinel)
        proc.join()
    code = proc.exitcode
    assert code is not None
    return code


def supervise(runner: Runner, procs: WorkerProcesses) -> None:
    """Make ``runner`` (role supervisor) run ``procs`` as its work, passing stops on to them."""

    async def work() -> None:
        try:
            await procs.start()
            await procs.wait()
        finally:
            await procs.kill_all()

    runner.supervise = work
    runner.on_stop.append(procs.forward)


async def prepare_join(
    db: Database, settings: Settings, batch: BatchRow, *, role: str = WORKER, workers: int = 1,
    extra: Mapping[str, Any] | None = None,
) -> Prepared:
    """A runner joining ``batch``: a worker (calls the batch's configured platforms) or the supervisor
    of local workers (calls nothing)."""
    planned = list(batch.platforms or settings.platform_names)
    if role == SUPERVISOR:  # its platforms only for the display: it opens no client
        runner = Runner(db.store, db.target, settings, planned, provider_factory(settings), role=role, workers=workers)
        return Prepared(runner, batch, False, [])
    await replay_spool(db, settings)
    usable, skipped = usable_platforms(settings, [p for p in planned if p in settings.platforms])
    spool = await Spool.open(settings.home, db.store)
    runner = Runner(db.store, db.target, settings, usable, provider_factory(settings), spool=spool, role=role,
                    workers=workers, extra_metadata=extra)
    return Prepared(runner, batch, False, skipped)
