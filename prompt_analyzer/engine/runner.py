"""Taking a batch through its platforms as fast as their rate limits allow.

The runner holds the batch lock, opens one :class:`~.lane.Lane` per platform, hands the pairs to a
schedule (:mod:`.schedules`) that calls each through its steps (:mod:`.pair`), and at the end decides the
batch's status from all its pairs.  Stopping is :class:`~.stopping.Stop`'s; database retries are
:class:`~.dbcalls.RetryingCalls`'; what is written about a pair is :class:`~.record.Recorder`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..analytics.scoring import score_after_run
from ..config import Settings
from ..db import BatchRow, DatabaseUnavailable, PairWork, Store
from ..db.batch_lock import BatchLock
from ..db.connect import Target
from ..providers import Provider
from ..redact import scrub
from ..statuses import FINISHED, BatchStatus
from .budget import CostBudget
from .dbcalls import RetryingCalls
from .estimate import HISTORY_BATCHES
from .lane import Lane
from .limits import DailyQuota
from .pair import PairCall
from .progress import Outcome, PlatformProgress, Progress
from .record import Recorder
from .schedules import LaneSchedule, PromptSchedule
from .spool import Spool
from .stopping import Stop

log = logging.getLogger("prompt_analyzer.engine")

__all__ = ["FINISHED", "BatchLocked", "Outcome", "PlatformProgress", "Progress", "Runner"]


class BatchLocked(RuntimeError):
    """Another process is running this batch (exit 75)."""


class Runner:
    def __init__(
        self,
        store: Store,
        target: Target,
        settings: Settings,
        platforms: Sequence[str],
        provider_factory: Callable[[str], Provider],
        *,
        extra_metadata: Mapping[str, Any] | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.db_error: DatabaseUnavailable | None = None
        self.target = target
        self.settings = settings
        self.run = settings.run
        self.platforms = list(platforms)
        self.provider_factory = provider_factory
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.secrets = settings.secrets()
        self.lanes: dict[str, Lane] = {}
        self.budget: CostBudget | None = None
        self.progress = Progress({name: PlatformProgress() for name in self.platforms})
        self.stop = Stop()
        self.interrupted_by: str | None = None
        self.db = RetryingCalls(store, where=target.where, within_s=self.run.db_retry_s, stop=self.stop)
        self.recorder = Recorder(store, self.db, owner=self.owner, spool=spool, secrets=self.secrets,
                                 extra_metadata=extra_metadata)

    def _open_lanes(self) -> None:
        """Clients are made only once the batch lock is ours (an overlapping run exits at once)."""
        for name in self.platforms:
            ps = self.settings.platform(name)
            self.lanes[name] = Lane.open(ps, self.provider_factory(name), breaker_threshold=self.run.breaker_threshold,
                                         daily=self._daily(name, ps.rpd) if ps.rpd else None)
            if self.stop.requested:
                self.lanes[name].halted.set()

    def _daily(self, name: str, rpd: int) -> DailyQuota:
        """``rpd`` counted per UTC day in the database (the day a run's reservation was made)."""
        day = datetime.now(UTC).date()
        return DailyQuota(rpd, lambda n: self.db(self.store.reserve_daily, name, day, n, rpd),
                          lambda n: self.db(self.store.give_back_daily, name, day, n))

    async def aclose(self) -> None:
        await self.recorder.aclose()
        for lane in self.lanes.values():
            with contextlib.suppress(Exception):  # closing is best effort at exit
                await lane.provider.aclose()

    # ------------------------------------------------------------------------------ control

    def request_stop(self, reason: str) -> None:
        """Stop starting calls; in-flight calls get the grace period to finish.  A second signal ends
        the grace period at once (calls still in flight stay resumable)."""
        self.stop.request(reason)
        for lane in self.lanes.values():
            lane.halted.set()
        if self.interrupted_by is None:
            self.interrupted_by = reason
            self.progress.stopping = reason

    def lease_s(self, lane: Lane) -> float:
        return self.run.lease_s or lane.settings.timeout_s + 60.0

    def _lost_database(self, exc: DatabaseUnavailable) -> None:
        """The database stayed down past db_retry_s: stop starting calls, keep what arrives."""
        if self.db_error is None:
            self.db_error = exc
            log.error("%s; stopping the run", exc, extra={"event": "database_lost"})
        self.request_stop("database")

    # ------------------------------------------------------------------------------ batch

    async def execute(self, batch: BatchRow) -> Outcome:
        batch_id: uuid.UUID = batch.id
        lock = BatchLock(self.target, batch_id)
        try:
            if not await lock.acquire():
                raise BatchLocked(f"batch {batch.idempotency_key or batch_id} is being run by another process")
            self._open_lanes()
            await asyncio.gather(*(lane.probe_limits() for lane in self.lanes.values()))
            # We hold the batch lock: whoever left pairs `processing` is gone.
            reclaimed = await self.db(self.store.expire_claims, batch_id, except_owner=self.owner)
            if reclaimed:
                log.info("reclaimed %d pair(s) left processing by a stopped run", reclaimed)
            await self._open_budget(batch_id)
            counts = await self.db(self.store.pair_counts, batch_id, self.platforms)
            for name, pp in self.progress.platforms.items():
                row = counts.get(name)
                if row:
                    pp.total = int(row["total"])
                    pp.done_before = int(row["success"])
            await self.db(self.store.set_batch_status, batch_id, BatchStatus.RUNNING, finished=False)
            self.progress.started = time.monotonic()
            await self._work(batch_id)
            if self.db_error is not None:
                raise self.db_error  # answers received meanwhile are in the spool
            return await self._finish(batch_id)
        finally:
            await lock.release()

    async def _open_budget(self, batch_id: uuid.UUID) -> None:
        """max_cost_usd: spent starts at what the batch cost in earlier runs (the lock is ours: it is all)."""
        if CostBudget.applies(self.settings, self.platforms):
            spent = {r.platform: r.cost for r in await self.db(self.store.batch_spend, batch_id)}
            history = {r.platform: r for r in await self.db(self.store.platform_history, self.platforms,
                                                            history_batches=HISTORY_BATCHES)}
            self.budget = CostBudget.build(self.settings, self.platforms, spent, history)

    async def _work(self, batch_id: uuid.UUID) -> None:
        """The calls of the run (batch mode's runner does its own, :mod:`.batch_mode`)."""
        await self.stop.run_with_grace(self._schedule().run(batch_id), self.run.grace_period_s)

    def _schedule(self, lanes: Mapping[str, Lane] | None = None) -> LaneSchedule | PromptSchedule:
        lanes = self.lanes if lanes is None else lanes
        common: dict[str, Any] = {"stop": self.stop, "page_size": self.run.page_size,
                                  "call_pair": self._call_pair, "on_db_lost": self._lost_database}
        if self.run.prompt_concurrency is None:
            return LaneSchedule(self.store, self.db, lanes, **common)
        return PromptSchedule(self.store, self.db, lanes, prompts_in_flight=self.run.prompt_concurrency,
                              **common)

    async def _final_status(self, batch_id: uuid.UUID, status: BatchStatus) -> BatchStatus:
        """The status the pairs decided; batch mode's runner may say ``submitted`` instead."""
        return status

    async def _call_pair(self, lane: Lane, pair: PairWork) -> None:
        async with lane.limit:
            if self.stop.requested:
                return
            call = PairCall(lane, pair, recorder=self.recorder, stop=self.stop, run=self.run,
                            progress=self.progress.platforms[lane.name], lease_s=self.lease_s(lane),
                            budget=self.budget)
            try:
                await call.run()
            except DatabaseUnavailable as e:
                self._lost_database(e)
            except Exception:  # a bug must not take every platform down: the pair ends `interrupted`
                log.exception("unexpected error on a %s pair; it is left for the next run", lane.name)

    async def _save_limits(self, batch_id: uuid.UUID) -> None:
        """Give back the day's unsent reservations; record the limits in force on the batch."""
        for lane in self.lanes.values():
            if lane.daily is not None:
                await lane.daily.close()
        await self.db(self.store.save_batch_limits, batch_id,
                      {name: lane.limits.snapshot() for name, lane in self.lanes.items()})

    async def _finish(self, batch_id: uuid.UUID) -> Outcome:
        # What stopped the work decides the status; a signal arriving from here on changes nothing.
        stopped_by = self.interrupted_by
        # No claim may commit after the claims are released (a claim group still retrying would leave
        # its rows `processing`): close the claimer first.
        await self.recorder.claimer.aclose()
        released = await self.db(self.store.release_claims, self.owner)
        if released:
            log.info("%d call(s) did not answer before the stop; their pairs stay resumable", released)
        for name, lane in self.lanes.items():
            if lane.breaker.open and not stopped_by:
                await self.db(
                    self.store.fail_remaining, batch_id, name, error_class=lane.breaker.error_class,
                    message=scrub(f"not called: {lane.breaker.reason}", self.secrets)[:1000],
                )
        await self.db(self.store.reconcile_jobs, batch_id)
        # The batch's status comes from all its pairs, not from the platforms this process ran.
        counts = await self.db(self.store.pair_counts, batch_id)
        unfinished = sum(int(r["total"]) - int(r["success"]) for r in counts.values())
        if stopped_by:
            status = BatchStatus.INTERRUPTED
        elif unfinished:
            status = BatchStatus.COMPLETED_WITH_ERRORS
        else:
            status = BatchStatus.COMPLETED
        status = await self._final_status(batch_id, status)
        finished = status.finished
        await self.db(self.store.set_batch_status, batch_id, status, finished=finished)
        batch = await self.db(self.store.refresh_batch_counters, batch_id)
        await score_after_run(self.store.pool, batch_id)  # its answers' brand mentions; never fails the run
        for name, lane in self.lanes.items():
            self.progress.platforms[name].breaker = lane.breaker.reason
        await self._save_limits(batch_id)
        return Outcome(batch=batch, progress=self.progress, interrupted_by=stopped_by)
