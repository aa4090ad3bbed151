"""Grouping many workers' database calls into one statement or transaction.

A worker hands its item over and waits until the call holding it has finished, so every promise
is unchanged: an answer counts as done only once it is committed, a pair is called only once its
claim is committed.  What changes is that one round trip and one commit serve every item that
arrived meanwhile.  Under light load a group is one item and nothing waits; under heavy load groups
grow up to ``max_group``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Grouped(Generic[T, R]):
    """``call(items) -> results`` (same order) shared by concurrent ``submit(item)`` callers."""

    def __init__(self, call: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_group: int = 64) -> None:
        self._call = call
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Returns this item's result once its group's call has finished; raises what the call raised."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await asyncio.shield(fut)  # a cancelled worker must not cancel its neighbours' call

    async def _run(self) -> None:
        group: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while True:
                group = [await self._queue.get()]
                while len(group) < self.max_group and not self._queue.empty():
                    group.append(self._queue.get_nowait())
                try:
                    results = await self._call([item for item, _ in group])
                except Exception as e:  # every waiter learns of the failure and decides (spool) itself
                    for _, fut in group:
                        if not fut.done():
                            _fail(fut, e)
                    continue
                for (_, fut), result in zip(group, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        except asyncio.CancelledError:
            # Closing: no waiter may be left waiting for a call that will never be made.
            for _, fut in group:
                if not fut.done():
                    _fail(fut, Cancelled("the group call was cancelled"))
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    _fail(fut, Cancelled("closed before the call was made"))
            raise

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _fail(fut: asyncio.Future[R], exc: Exception) -> None:
    """Hand ``exc`` to the waiter.  Its waiter may be gone (cancelled at the end of a grace period):
    mark the exception retrieved so asyncio does not log it as lost; a waiter still present gets it."""
    fut.set_exception(exc)
    fut.exception()


class Cancelled(Exception):
    """The grouped call of this item was cancelled or never made: the item's fate is unknown to the caller."""
