"""Group commit for answers: many workers' successes written in one transaction.

A worker hands its answer over and waits until the transaction holding it has committed, so the
durability promise is unchanged (an answer counts as done only once it is in Postgres); what changes
is that one commit and one round trip serve every answer that arrived meanwhile.  Under light load a
group is one answer and nothing waits; under heavy load groups grow up to ``max_group``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from ..db import SuccessRecord

Write = Callable[[Sequence[SuccessRecord]], Awaitable[None]]


class GroupWriter:
    def __init__(self, write: Write, *, max_group: int = 64) -> None:
        self._write = write
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[SuccessRecord, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.groups = 0
        self.records = 0

    async def write(self, rec: SuccessRecord) -> None:
        """Returns once ``rec`` is committed; raises what the write raised."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((rec, fut))
        await asyncio.shield(fut)  # a cancelled worker must not cancel its neighbours' commit

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._write([rec for rec, _ in group])
            except BaseException as e:  # every waiter learns of the failure and decides (spool) itself
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(e if isinstance(e, Exception) else RuntimeError(str(e)))
                if isinstance(e, asyncio.CancelledError):
                    raise
                continue
            self.groups += 1
            self.records += len(group)
            for _, fut in group:
                if not fut.done():
                    fut.set_result(None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
