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


PICK_AHEAD_S = 1.0  # a pick claims about this many seconds of the lane's calls (at its rate), at least what is asked


class Picks:
    """A lane's pairs, claimed by this worker a page at a time as its calls need them.

    The pages follow the batch's jobs in id order from where the last one ended; once a pick finds
    nothing further, the walk starts over once from the first job (pairs skipped while another
    transaction held their job, or interrupted meanwhile), and the lane is done when that finds nothing
    either.  What is left then (a dead worker's claims once they expire) is the runner's next pass."""

    def __init__(self, store: Store, db: RetryingCalls, batch_id: uuid.UUID, lane: Lane, *, owner: str,
                 lease_s: float, page_size: int) -> None:
        self.store, self.db, self.batch_id, self.lane = store, db, batch_id, lane
        self.owner, self.lease_s, self.page_size = owner, lease_s, page_size
        self._claimed: deque[PairWork] = deque()
        self._after: uuid.UUID | None = None
        self._done = False
        self._asking = 0  # tasks waiting for a pair
        self._lock = asyncio.Lock()

    def size(self) -> int:
        """The next pick's size: about PICK_AHEAD_S of calls at the lane's rate, at least one per task
        waiting, at most a page."""
        ahead = math.ceil(self.lane.pacer.rpm / 60.0 * PICK_AHEAD_S)
        return max(1, min(self.page_size, max(ahead, self._asking)))

    async def next(self) -> PairWork | None:
        """A pair claimed for this worker; None once the lane has nothing left to pick."""
        self._asking += 1
        try:
            async with self._lock:
                while not self._claimed and not self._done:
                    await self._pick()
                return self._claimed.popleft() if self._claimed else None
        finally:
            self._asking -= 1

    async def _pick(self) -> None:
        picked = await self.db(self.store.pick_pairs, self.batch_id, self.lane.name, after=self._after,
                               limit=self.size(), owner=self.owner, lease_s=self.lease_s)
        if picked.last_job is None:  # nothing after `after`
            if self._after is None:
                self._done = True
            self._after = None
            return
        self._after = picked.last_job
        self._claimed.extend(picked.pairs)

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
                      page_size=self.page_size)

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
                    await self.call_pair(lane, pair)

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
