"""Taking a batch through its platforms as fast as their rate limits allow, alone or with other workers.

The runner joins the batch as a worker (:mod:`..db.batch_lock`: a row with a lease, renewed by a
heartbeat that also renews its claims and declares silent workers dead), opens one :class:`~.lane.Lane`
per platform, hands the pairs to a schedule (:mod:`.schedules`) that calls each through its steps
(:mod:`.pair`), then takes over what dead workers left until nothing is left that no live worker is
calling.  It leaves the batch; the last worker to leave decides the batch's status from all its pairs.
Stopping is :class:`~.stopping.Stop`'s; database retries are :class:`~.dbcalls.RetryingCalls`'; what is
written about a pair is :class:`~.record.Recorder`'s; limits shared with other workers are
:mod:`.shared_limits`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..analytics.scoring import score_after_run
from ..config import Settings
from ..db import BatchRow, DatabaseUnavailable, PairWork, Store
from ..db.batch_lock import COORDINATOR, SUPERVISOR, WORKER, BatchWorkers
from ..db.connect import Target
from ..db.provider_batches import ProviderBatches
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
from .shared_limits import Coordination
from .spool import Spool
from .stopping import Stop

log = logging.getLogger("prompt_analyzer.engine")

__all__ = ["COORDINATOR", "FINISHED", "SUPERVISOR", "WORKER", "BatchFinished", "BatchLocked", "Outcome",
           "PlatformProgress", "Progress", "Runner"]

_POLL_S = 1.0  # how often a worker with nothing to claim looks again while others still call


class BatchFinished(Exception):
    """The batch of this key already finished; it is not run again."""

    def __init__(self, batch: BatchRow) -> None:
        super().__init__(batch.idempotency_key)
        self.batch = batch


class BatchLocked(RuntimeError):
    """Another live ``analyze run`` holds this batch's coordinator role (exit 75)."""


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
        role: str = COORDINATOR,
        workers: int = 1,
        reopen: bool = False,
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
        self.reopen = reopen  # a rerun: a finished batch is run again
        self.role = role  # COORDINATOR: an `analyze run`; WORKER: `analyze worker`; SUPERVISOR: makes no calls
        self.coord = Coordination(settings.coordination.redis_url, workers=workers)
        self.members: BatchWorkers | None = None
        # The parent of `run --workers N` (role SUPERVISOR): runs and waits for its worker processes.
        self.supervise: Callable[[], Awaitable[None]] | None = None
        self.on_stop: list[Callable[[str], None]] = []
        self._beating: asyncio.Task[None] | None = None

    def _open_lanes(self) -> None:
        """Clients are made only once the batch is joined (an overlapping run exits at once)."""
        if self.role == SUPERVISOR:
            return  # its workers call; it follows their progress (_follow)
        for name in self.platforms:
            ps = self.settings.platform(name)
            self.lanes[name] = Lane.open(ps, functools.partial(self.provider_factory, name),
                                         breaker_threshold=self.run.breaker_threshold,
                                         daily=self._daily(name, ps.rpd) if ps.rpd else None,
                                         limits=self.coord.limits if self.coord.shares else None)
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
                await lane.client.aclose()
        await self.coord.aclose()

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.progress.platforms.values())

    # ------------------------------------------------------------------------------ control

    def request_stop(self, reason: str) -> None:
        """Stop starting calls; in-flight calls get the grace period to finish.  A second signal ends
        the grace period at once (calls still in flight stay resumable)."""
        self.stop.request(reason)
        for lane in self.lanes.values():
            lane.halted.set()
        for forward in self.on_stop:
            forward(reason)
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
        lease = self.settings.coordination.worker_lease_s
        members = self.members = BatchWorkers(self.store, batch_id, self.owner, role=self.role, lease_s=lease)
        joined = await self.db(members.join, reopen=self.reopen)
        if joined.busy:
            raise BatchLocked(f"batch {batch.idempotency_key or batch_id} is being run by another process "
                              "(join it with `analyze worker`)")
        if joined.finished:
            raise BatchFinished(joined.batch)
        if joined.taken_over:
            log.info("reclaimed %d pair(s) left processing by a stopped run", joined.taken_over)
        # Pairs are read and claimed as of this round: an error another worker recorded in it is final.
        self.store = self.recorder.store = self.store.for_round(members.round_started_at)
        self._beating = asyncio.create_task(self._heartbeat(members, lease / 3))
        try:
            if self.role != SUPERVISOR:
                self.coord.workers = max(self.coord.workers, joined.calling)
                await self.coord.connect()
            self._open_lanes()
            for lane in self.lanes.values():
                lane.start_probe()  # each lane calls once its own client is made and its limits probed
            await self._open_budget(batch_id)
            # Start-up (imports, under load) may have held the event loop past the lease: renew it before
            # the first claim, or another worker could take this one's claims over.
            await self.db(members.heartbeat)
            counts = await self.db(self.store.pair_counts, batch_id, self.platforms)
            for name, pp in self.progress.platforms.items():
                row = counts.get(name)
                if row:
                    pp.total = int(row["total"])
                    pp.done_before = int(row["success"])
            self.progress.started = time.monotonic()
            # The supervisor's own work is its workers' lives: their grace period, then a margin to exit.
            grace = self.run.grace_period_s + (30.0 if self.role == SUPERVISOR else 0.0)
            await self.stop.run_with_grace(self._work(batch_id), grace)
            if self.db_error is not None:
                raise self.db_error  # answers received meanwhile are in the spool
            return await self._finish(batch_id)
        finally:
            await self._stop_heartbeat()
            for lane in self.lanes.values():
                lane.stop_probe()

    async def _stop_heartbeat(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(BaseException):
                await self._beating

    async def _heartbeat(self, members: BatchWorkers, every_s: float) -> None:
        """Renew this worker's lease and its claims; learn how many workers share the limits."""
        while True:
            await asyncio.sleep(every_s)
            try:
                calling = await self.db(members.heartbeat)
            except DatabaseUnavailable as e:
                self._lost_database(e)
                return
            except Exception:  # a heartbeat missed is retried at the next beat; the lease has room for two
                log.warning("heartbeat failed", exc_info=True)
                continue
            self.coord.set_workers(calling)

    async def _work(self, batch_id: uuid.UUID) -> None:
        """One pass over the batch's pairs, then take over what other workers leave behind (a dead
        worker's claims once they expire, pairs a stopped worker interrupted) until no pair is left
        that no live worker is calling."""
        if self.role == SUPERVISOR:
            follow = asyncio.create_task(self._follow(batch_id))
            try:
                if self.supervise is not None:
                    await self.supervise()
                await self._wait_for_others()
            finally:
                follow.cancel()
            return
        await self._schedule().run(batch_id)
        while not self.stop.requested:
            open_lanes = [name for name, lane in self.lanes.items() if not lane.breaker.open]
            act = await self.db(self.store.batch_activity, batch_id, open_lanes, owner=self.owner)
            if act.todo and open_lanes:
                before = self.calls
                await self._schedule().run(batch_id)
                if self.calls == before:  # nothing it could take yet (held under other transactions' locks)
                    await self.stop.until_requested(_POLL_S)
                continue
            if not act.held:
                return
            # Other workers hold claims: wait, in case one dies and its pairs must be taken over.
            wait = _POLL_S
            if act.next_expiry is not None:
                wait = min(wait, max(0.05, (act.next_expiry - datetime.now(UTC)).total_seconds()))
            await self.stop.until_requested(wait)

    async def _follow(self, batch_id: uuid.UUID) -> None:
        """The supervisor's live display: the batch's pairs as its workers record them."""
        while True:
            await asyncio.sleep(_POLL_S)
            with contextlib.suppress(Exception):  # only the display depends on it
                counts = await self.store.pair_counts(batch_id, self.platforms)
                for name, pp in self.progress.platforms.items():
                    row = counts.get(name)
                    if row:
                        pp.success = int(row["success"]) - pp.done_before
                        pp.error = int(row["error"])
                        pp.in_flight = int(row["processing"])

    async def _wait_for_others(self) -> None:
        """The supervisor's end: its workers have exited; wait for any other live worker (another
        machine's) to leave, so the batch is finished here, once."""
        assert self.members is not None
        while not self.stop.requested:
            if not await self.db(self.members.others_live):
                return
            await self.stop.until_requested(_POLL_S)

    async def _open_budget(self, batch_id: uuid.UUID) -> None:
        """max_cost_usd: spent starts at what the batch cost in earlier runs (the lock is ours: it is all)."""
        if CostBudget.applies(self.settings, self.platforms):
            spent = {r.platform: r.cost for r in await self.db(self.store.batch_spend, batch_id)}
            history = {r.platform: r for r in await self.db(self.store.platform_history, self.platforms,
                                                            history_batches=HISTORY_BATCHES)}
            self.budget = CostBudget.build(self.settings, self.platforms, spent, history)
            if self.budget is not None and (self.coord.workers > 1 or self.role == WORKER):
                log.warning("max_cost_usd with several workers: each process holds the budget against what was "
                            "spent when it started, not against the other workers' calls in flight; the bill "
                            "may pass it by up to one budget per extra worker (docs/operations.md)",
                            extra={"event": "budget_per_process"})

    def _schedule(self, lanes: Mapping[str, Lane] | None = None) -> LaneSchedule | PromptSchedule:
        lanes = self.lanes if lanes is None else lanes
        common: dict[str, Any] = {"stop": self.stop, "page_size": self.run.page_size,
                                  "call_pair": self._call_pair, "on_db_lost": self._lost_database}
        if self.run.prompt_concurrency is None:
            return LaneSchedule(self.store, self.db, lanes, owner=self.owner, lease_s=self.lease_s, **common)
        return PromptSchedule(self.store, self.db, lanes, prompts_in_flight=self.run.prompt_concurrency,
                              **common)

    async def _amend_status(self, batch_id: uuid.UUID) -> Callable[[BatchStatus], BatchStatus]:
        """How the status the pairs decide is amended (read once, before leaving): ``submitted`` while
        provider batches of the batch are open, whatever runner finishes it (a live worker or a supervisor
        too), so that the next run with its key, or `analyze collect`, can still collect them."""
        if await self.db(ProviderBatches(self.store).for_batch, batch_id, open_only=True):
            return lambda _decided: BatchStatus.SUBMITTED
        return lambda decided: decided

    async def _call_pair(self, lane: Lane, pair: PairWork) -> None:
        """One pair through its steps; the caller holds a slot of the lane's in-flight limit."""
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
        await self.recorder.close_claims()
        released = await self.db(self.store.release_claims, self.owner)
        if released:
            log.info("%d call(s) did not answer before the stop; their pairs stay resumable", released)
        for name, lane in self.lanes.items():
            if lane.breaker.open and not stopped_by:
                await self.db(
                    self.store.fail_remaining, batch_id, name, error_class=lane.breaker.error_class,
                    message=scrub(f"not called: {lane.breaker.reason}", self.secrets)[:1000],
                )
        # What the batch's pairs decide, amended (``submitted`` while provider batches are open): read
        # before leaving, since the decision is taken in the leaving transaction.
        amend = await self._amend_status(batch_id)

        def decide(unfinished: int) -> BatchStatus:
            # The batch's status comes from all its pairs, not from the platforms this process ran.
            if stopped_by:
                return amend(BatchStatus.INTERRUPTED)
            return amend(BatchStatus.COMPLETED_WITH_ERRORS if unfinished else BatchStatus.COMPLETED)

        assert self.members is not None
        await self._stop_heartbeat()  # a beat after leaving would make this worker look alive
        left = await self.db(self.members.leave, state="stopped" if stopped_by else "done", calls=self.calls,
                             decide=decide)
        if left.last:
            await score_after_run(self.store.pool, batch_id)  # its answers' brand mentions; never fails the run
        for name, lane in self.lanes.items():
            self.progress.platforms[name].breaker = lane.breaker.reason
        await self._save_limits(batch_id)
        return Outcome(batch=left.batch, progress=self.progress, interrupted_by=stopped_by, last=left.last)
