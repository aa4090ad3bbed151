"""The order in which pairs are called.  Two schedules share everything below the lane:

* :class:`LaneSchedule` (``prompt_concurrency = "auto"``, the default): each platform is a lane with
  its own producer (keyset pages of the batch's pairs still to do on that platform), as many workers as
  its in-flight limit can reach (gated by that limit, which may change during the run), and its pacer.
  Lanes are independent: a slow or tightly limited platform never
  holds the others back, and memory stays flat (at most one page plus the queue per lane).
* :class:`PromptSchedule` (``prompt_concurrency = N``): N prompts in flight, each waiting for all its
  platforms, as the original service did.  Kept for comparison and for users who relied on it.

A database lost while reading pages stops the run (``on_db_lost``); calls in flight then finish within
the grace period.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from ..db import DatabaseUnavailable, PairWork, Store
from .dbcalls import RetryingCalls
from .lane import Lane
from .stopping import Stop

CallPair = Callable[[Lane, PairWork], Coroutine[Any, Any, None]]
OnDbLost = Callable[[DatabaseUnavailable], None]


class LaneSchedule:
    def __init__(
        self, store: Store, db: RetryingCalls, lanes: Mapping[str, Lane], *, stop: Stop, page_size: int,
        call_pair: CallPair, on_db_lost: OnDbLost,
    ) -> None:
        self.store, self.db, self.lanes, self.stop = store, db, lanes, stop
        self.page_size = page_size
        self.call_pair = call_pair
        self.on_db_lost = on_db_lost

    async def run(self, batch_id: uuid.UUID) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes.values():
                tg.create_task(self._lane(batch_id, lane))

    def _stopped(self, lane: Lane) -> bool:
        return self.stop.requested or lane.breaker.open

    async def _lane(self, batch_id: uuid.UUID, lane: Lane) -> None:
        workers = lane.workers  # the in-flight limit (lane.limit, adaptive) gates them in the runner
        queue: asyncio.Queue[PairWork | None] = asyncio.Queue(maxsize=workers * 2)

        async def produce() -> None:
            try:
                await produce_pages()
            except DatabaseUnavailable as e:
                self.on_db_lost(e)
            # One end marker per worker.  Not in a `finally`: when cancelled, the task group cancels the
            # workers too, and a put on a full queue would wait for ever for workers that are gone.
            for _ in range(workers):
                await queue.put(None)

        async def produce_pages() -> None:
            after: uuid.UUID | None = None
            while not self._stopped(lane):
                page = await self.db(self.store.pending_pairs, batch_id, lane.name, after=after,
                                     limit=self.page_size)
                if not page:
                    break
                for pair in page:
                    if self._stopped(lane):
                        break
                    await queue.put(pair)
                after = page[-1].job_id

        async def work() -> None:
            while (pair := await queue.get()) is not None:
                if self._stopped(lane):
                    continue  # drain: the producer is stopping too
                await self.call_pair(lane, pair)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce())
            for _ in range(workers):
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
                        tg.create_task(self.call_pair(lane, pair))
        finally:
            slots.release()
