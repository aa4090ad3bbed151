"""``analyze run --workers N``: N local worker processes on one batch, supervised by the parent.

The parent creates the batch once, takes its coordinator role (a second ``analyze run`` on it exits
75), starts N ``analyze worker BATCH_ID`` processes (:class:`WorkerProcesses`) and waits for them, then
for any worker of another machine, and finishes the batch once: status, counters, metrics, webhook and
the one summary are the parent's.  The workers coordinate through rows (:mod:`..db.batch_lock`), not
through the parent: a worker killed with ``kill -9`` is replaced by the others taking over its pairs
once its lease expires.

Each worker runs in a session of its own, so a Ctrl-C on the terminal reaches the parent only, which
passes every SIGINT / SIGTERM on to each worker once (as SIGTERM): the grace period applies to each, and
a second signal cuts it short for all.
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
from multiprocessing.connection import wait
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
_STATUS_WAIT_S = 5.0  # after a worker is gone, how long the fork server may take to report its status
_CONTEXT = multiprocessing.get_context("forkserver")
_STOPS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}  # the stops a parent passes on

ENTRY = "prompt_analyzer.cli:main"  # the `analyze` command a worker process runs


def _worker(argv: Sequence[str]) -> None:
    """A worker process: its own session (a terminal's Ctrl-C reaches the parent only), no stdin or
    stdout (the summary is the parent's), the stop signals its own (the fork server runs with SIGINT
    blocked), then ``analyze <argv>``."""
    os.setsid()
    # A terminal's Ctrl-C that reached this process before setsid() is pending: dropped, it is the parent's.
    while signal.sigtimedwait({signal.SIGINT}, 0) is not None:
        pass
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_STOPS.values()))
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY)):
        devnull = os.open(os.devnull, mode)
        os.dup2(devnull, fd)
        os.close(devnull)
    sys.argv = ["analyze", *argv]
    module, _, name = ENTRY.partition(":")
    getattr(importlib.import_module(module), name)()


async def _readable(fd: int) -> None:
    """Wait, without a thread, until ``fd`` is readable (a pidfd: the process is gone; a sentinel: its
    status is in)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class _Worker:
    """One worker process, followed through a pidfd where the system has them: a worker is the fork
    server's child, and the server may die before it (a signal to the process group, the OOM killer),
    which would make the worker look exited through multiprocessing's sentinel alone."""

    def __init__(self, proc: BaseProcess) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.pidfd: int | None = None
        self.gone = False  # exited before it could be followed: never signalled by a pid now free
        self.code: int | None = None
        if not hasattr(os, "pidfd_open") or self.pid is None:
            return  # no pidfds here: the pid and the sentinel
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self.gone = True
            return
        except OSError:  # pidfds not allowed here: the pid and the sentinel
            return
        if wait([proc.sentinel], 0):  # its status was already in: the pid may belong to another process now
            os.close(self.pidfd)
            self.pidfd, self.gone = None, True

    def signal(self, sig: signal.Signals) -> None:
        if self.code is not None or self.gone:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            elif self.pid is not None:
                os.kill(self.pid, sig)

    async def exited(self) -> int:
        """Its exit code once it is gone (negative: the signal that killed it; 255: unknown, the fork
        server went first)."""
        if self.code is None:
            if self.pidfd is not None:
                await _readable(self.pidfd)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_STATUS_WAIT_S):
                        await _readable(self.proc.sentinel)
            else:
                await _readable(self.proc.sentinel)
            code = self.proc.exitcode
            self.code = 255 if code is None else code
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
        return self.code


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
        self.workers: list[_Worker] = []
        self.stopping: signal.Signals | None = None  # a stop passed on: no worker starts after it

    @staticmethod
    def warm(kinds: Iterable[str]) -> None:
        """Start the fork server now: it imports the command and the clients of ``kinds`` (platform
        kinds, :data:`..platforms.KINDS`) while the caller goes on.  It starts with SIGINT blocked, so
        a terminal's Ctrl-C during its imports does not kill it (its workers unblock it)."""
        modules = [ENTRY.partition(":")[0], *dict.fromkeys(KINDS[k].module for k in kinds if k in KINDS)]
        _CONTEXT.set_forkserver_preload(modules)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def argv(self) -> list[str]:
        return [*self.global_args, "worker", str(self.batch_id), "--of", str(self.n)]

    async def start(self) -> None:
        self.warm(self.kinds)  # a no-op once the server runs
        for _ in range(self.n):
            if self.stopping is not None:
                break  # stopped while the others started: no more
            # daemon: should this process exit with a worker still running, multiprocessing's exit hook
            # sends it SIGTERM (a clean stop) instead of waiting for it.
            proc = _CONTEXT.Process(target=_worker, args=(self.argv(),), name="analyze worker", daemon=True)
            # The first start waits for the fork server's imports.
            await asyncio.to_thread(proc.start)
            worker = _Worker(proc)
            self.workers.append(worker)
            if self.stopping is not None:  # the stop came while this one was starting
                worker.signal(self.stopping)
        log.info("started %d worker processes: %s", len(self.workers), " ".join(str(w.pid) for w in self.workers),
                 extra={"event": "workers_started", "batch": self.batch_id})

    def forward(self, reason: str) -> None:
        """Pass a SIGINT / SIGTERM on to every worker still running (and to any started after it), as
        SIGTERM: a worker just forked may still have the fork server's SIGINT disposition (ignored, so
        a SIGINT would be lost), never its SIGTERM one; a worker treats both as a stop."""
        if reason not in _STOPS:
            return
        self.stopping = signal.SIGTERM
        for worker in self.workers:
            worker.signal(signal.SIGTERM)

    async def wait(self) -> list[int]:
        """Wait for every worker to exit; their exit codes (negative: killed by that signal)."""
        codes = list(await asyncio.gather(*(w.exited() for w in self.workers)))
        for worker, code in zip(self.workers, codes, strict=True):
            if code not in (0, 1, 130, 143):
                log.warning("worker process %d exited with %s; the other workers take over its pairs",
                            worker.pid, f"signal {-code}" if code < 0 else code,
                            extra={"event": "worker_lost", "batch": self.batch_id})
        return codes

    async def kill_all(self) -> None:
        """Leftovers (the parent is ending): killed; their claims expire with their leases."""
        for worker in self.workers:
            worker.signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.exited(), _EXIT_WAIT_S)


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
