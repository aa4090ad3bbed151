"""The order in which pairs are called.  Two schedules share everything below the lane:

* :class:`LaneSchedule` (``prompt_concurrency = "auto"``, the default): each platform is a lane with
  as many worker tasks as its in-flight limit can reach, each holding a slot of that limit (which may
  change during the run) before it takes a pair, and its pacer.  A task takes a pair from the lane's
  :class:`Picks`: pairs claimed a page at a time (``FOR UPDATE SKIP LOCKED``, :meth:`Store.pick_pairs`),
  each page about a second of the lane's calls, so that several workers of one batch take disjoint
  pages instead of racing for the same pairs, and none holds much more than it will call soon (the end
  of a batch stays balanced between them).  Lanes are independent: a slow or tightly limited platform
  never holds the others back, and memory stays flat (at most one page per lane).
* :class:`PromptSchedule` (``prompt_concurrency = N``): N prompts in flight, each waiting for all its
  platforms, as the original service did; each pair is claimed just before its call.  Kept for
  comparison and for users who relied on it.

A database lost while picking or reading pages stops the run (``on_db_lost``); calls in flight then
finish within the grace period.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from ..db import DatabaseUnavailable, PairWork, Store
from .dbcalls import RetryingCalls
from .lane import Lane
from .stopping import Stop

CallPair = Callable[[Lane, PairWork], Coroutine[Any, Any, None]]
OnDbLost = Callable[[DatabaseUnavailable], None]


async def call_in_slot(lane: Lane, pair: PairWork, call_pair: CallPair, stop: Stop) -> None:
    """``call_pair`` holding a slot of the lane's in-flight limit (a pair that comes already chosen)."""
    async with lane.limit:
        if not stop.requested:
            await call_pair(lane, pair)


PICK_AHEAD_S = 1.0  # a pick claims about this many seconds of the lane's calls, at least what is asked
LOCKED_WAIT_S = (0.01, 0.25)  # pairs left only under other transactions' locks: look again after this (doubling)
LOCKED_GIVE_UP_S = 10.0  # ... until this long without a pick; what is left then is the runner's next pass


class Picks:
    """A lane's pairs, claimed by this worker a page at a time as its calls need them.

    The pages follow the batch's jobs in id order from where the last one ended; once a pick finds
    nothing further, the walk starts over from the first job.  A pick passes over a job another
    transaction holds (another lane's pick, an answer being written), so a walk that claims nothing does
    not yet mean the lane is done: :meth:`Store.lane_pending` tells whether pairs are still to do (then
    the walk waits briefly and starts over); the lane is done when none is, or after
    :data:`LOCKED_GIVE_UP_S` without a claim (the runner's next pass takes what is left).

    A pick whose reply is lost after it committed (the connection dropped) leaves claims this worker
    never calls: they are released ``interrupted`` at the run's end, as a stop's are, and taken up by
    the next pass of a worker still on the batch, or by the next run.  They are not taken up here: an
    own claim still ``processing`` could also be a pair whose call was made and whose answer went to the
    spool, and calling it again would pay for it twice."""

    def __init__(self, store: Store, db: RetryingCalls, batch_id: uuid.UUID, lane: Lane, *, owner: str,
                 lease_s: float, page_size: int, stopped: Callable[[], bool]) -> None:
        self.store, self.db, self.batch_id, self.lane = store, db, batch_id, lane
        self.owner, self.lease_s, self.page_size = owner, lease_s, page_size
        self.stopped = stopped
        self._claimed: deque[PairWork] = deque()
        self._out: set[uuid.UUID] = set()  # handed out, not yet back (see done())
        self._after: uuid.UUID | None = None
        self._walk_claimed = False  # the current walk has claimed something
        self._done = False
        self._asking = 0  # tasks waiting for a pair
        self._idle_since: float | None = None  # first walk that claimed nothing, while pairs were left
        self._wait = LOCKED_WAIT_S[0]
        self._lock = asyncio.Lock()

    def size(self) -> int:
        """The next pick's size: about PICK_AHEAD_S of the calls the lane can make (its rate, or its
        in-flight limit over its latency if that is lower), at least one per task waiting, at most a page."""
        limits = self.lane.limits
        rate = min(self.lane.pacer.rpm / 60.0, self.lane.limit.limit / max(limits.concurrency.latency_s(), 0.001))
        return max(1, min(self.page_size, max(math.ceil(rate * PICK_AHEAD_S), self._asking)))

    async def next(self) -> PairWork | None:
        """A pair claimed for this worker; None once the lane has nothing left to pick (or stops)."""
        self._asking += 1
        try:
            async with self._lock:
                while not self._claimed and not self._done and not self.stopped():
                    await self._pick()
                if not self._claimed or self.stopped():
                    return None
                pair = self._claimed.popleft()
                assert pair.response_id is not None
                self._out.add(pair.response_id)
                return pair
        finally:
            self._asking -= 1

    def done(self, pair: PairWork) -> None:
        """The caller is through with ``pair`` (answered, failed, or left to the run's end)."""
        if pair.response_id is not None:
            self._out.discard(pair.response_id)

    async def _pick(self) -> None:
        picked = await self.db(self.store.pick_pairs, self.batch_id, self.lane.name, after=self._after,
                               limit=self.size(), owner=self.owner, lease_s=self.lease_s)
        if picked.last_job is not None:  # a page: claimed, or lost to other workers' claims just before
            self._after = picked.last_job
            # A pair still being called here is not handed out twice (its claim expired under a stall).
            fresh = [p for p in picked.pairs if p.response_id not in self._out]
            self._claimed.extend(fresh)
            if fresh:
                self._walk_claimed = True
                self._idle_since, self._wait = None, LOCKED_WAIT_S[0]
            return
        walk_claimed, self._after, self._walk_claimed = self._walk_claimed, None, False
        if walk_claimed:
            return  # the end of a walk that claimed something: start over from the first job
        # A whole walk claimed nothing: done, unless pairs are left under other transactions' locks.
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        if (now - self._idle_since >= LOCKED_GIVE_UP_S
                or not await self.db(self.store.lane_pending, self.batch_id, self.lane.name)):
            self._done = True
            return
        await self.lane.sleep(self._wait)  # pairs held by other transactions' locks for a moment
        self._wait = min(self._wait * 2, LOCKED_WAIT_S[1])

    def close(self) -> None:
        """Take no more; pairs claimed and not taken stay claimed until the run releases its claims."""
        self._done = True
        self._claimed.clear()


class LaneSchedule:
    def __init__(
        self, store: Store, db: RetryingCalls, lanes: Mapping[str, Lane], *, stop: Stop, page_size: int,
        call_pair: CallPair, on_db_lost: OnDbLost, owner: str, lease_s: Callable[[Lane], float],
    ) -> None:
        self.store, self.db, self.lanes, self.stop = store, db, lanes, stop
        self.page_size = page_size
        self.call_pair = call_pair
        self.on_db_lost = on_db_lost
        self.owner = owner
        self.lease_s = lease_s

    async def run(self, batch_id: uuid.UUID) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes.values():
                tg.create_task(self._lane(batch_id, lane))

    def _stopped(self, lane: Lane) -> bool:
        return self.stop.requested or lane.breaker.open

    async def _lane(self, batch_id: uuid.UUID, lane: Lane) -> None:
        picks = Picks(self.store, self.db, batch_id, lane, owner=self.owner, lease_s=self.lease_s(lane),
                      page_size=self.page_size, stopped=lambda: self._stopped(lane))

        async def work() -> None:
            while not self._stopped(lane):
                async with lane.limit:  # a slot first: a pair is claimed only when a call can take it
                    if self._stopped(lane):
                        return
                    try:
                        pair = await picks.next()
                    except DatabaseUnavailable as e:
                        picks.close()
                        self.on_db_lost(e)
                        return
                    if pair is None:
                        return
                    try:
                        await self.call_pair(lane, pair)
                    finally:
                        picks.done(pair)

        async with asyncio.TaskGroup() as tg:
            for _ in range(lane.workers):  # the in-flight limit (lane.limit, adaptive) gates them
                tg.create_task(work())


class PromptSchedule:
    def __init__(
        self, store: Store, db: RetryingCalls, lanes: Mapping[str, Lane], *, stop: Stop, page_size: int,
        prompts_in_flight: int, call_pair: CallPair, on_db_lost: OnDbLost,
    ) -> None:
        self.store, self.db, self.lanes, self.stop = store, db, lanes, stop
        self.page_size = page_size
        self.n = prompts_in_flight
        self.call_pair = call_pair
        self.on_db_lost = on_db_lost

    async def run(self, batch_id: uuid.UUID) -> None:
        slots = asyncio.Semaphore(self.n)
        after: uuid.UUID | None = None
        platforms = list(self.lanes)
        async with asyncio.TaskGroup() as tg:
            while not self.stop.requested:
                try:
                    page = await self.db(self.store.pending_jobs, batch_id, platforms, after=after,
                                         limit=self.page_size)
                except DatabaseUnavailable as e:
                    self.on_db_lost(e)  # prompts in flight finish within the grace period
                    break
                if not page:
                    break
                for pairs in page:
                    await slots.acquire()
                    if self.stop.requested:
                        slots.release()
                        break
                    tg.create_task(self._one_prompt(pairs, slots))
                after = page[-1][0].job_id

    async def _one_prompt(self, pairs: Sequence[PairWork], slots: asyncio.Semaphore) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for pair in pairs:
                    lane = self.lanes[pair.platform]
                    if not lane.breaker.open:
                        tg.create_task(call_in_slot(lane, pair, self.call_pair, self.stop))
        finally:
            slots.release()
