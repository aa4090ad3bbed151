"""How a run stops: a first request stops new calls, the grace period lets calls in flight finish,
a second request (or the end of the grace period) forces the end.

Every wait of the engine that can be long ends at a stop: a call's waits (backoff, a provider's pause,
the pacer's next slot, a token budget) through its lane (:meth:`Lane.sleep`, halted by a stop or by the
breaker), database retry waits through :meth:`Stop.until_forced`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("prompt_analyzer.engine")


class Stop:
    def __init__(self) -> None:
        self._requested = asyncio.Event()
        self._forced = asyncio.Event()
        self.reason: str | None = None  # the first request's: "SIGINT", "SIGTERM", "database"

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def forced(self) -> bool:
        return self._forced.is_set()

    def request(self, reason: str) -> None:
        """Stop starting calls.  A second request by a signal forces the end at once."""
        if self._requested.is_set() and reason != "database":
            self._forced.set()
        if self.reason is None:
            self.reason = reason
        self._requested.set()

    async def until_forced(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the stop is forced first (a database retry's wait)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._forced.wait()

    async def until_requested(self, seconds: float) -> None:
        """Sleep ``seconds`` unless a stop is requested first (a worker waiting for the others)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._requested.wait()

    async def run_with_grace(self, work: Awaitable[Any], grace_s: float) -> None:
        """Run ``work`` to its end, or, once a stop is requested, for ``grace_s`` more (less if forced),
        then cancel it.  Exceptions of ``work`` propagate."""
        task = asyncio.ensure_future(work)
        stop_wait = asyncio.ensure_future(self._requested.wait())
        try:
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                force_wait = asyncio.ensure_future(self._forced.wait())
                try:
                    await asyncio.wait({task, force_wait}, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    force_wait.cancel()
                await _cancel(task)
            if task.done() and not task.cancelled():
                task.result()
        finally:
            stop_wait.cancel()
            await _cancel(task)


_CANCEL_WAIT_S = 5.0  # how long a cancelled task may take to unwind before it is cancelled again
_CANCEL_TRIES = 3


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it, boundedly: a library that swallows a cancellation gets it again;
    a task that still does not end is left behind (logged) rather than holding the stop for ever."""
    for _ in range(_CANCEL_TRIES):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=_CANCEL_WAIT_S)
    if task.done():
        if not task.cancelled():
            with contextlib.suppress(BaseException):
                task.exception()  # retrieved: the stop decides what happens next
    else:
        log.error("work did not end after %d cancellations; leaving it behind", _CANCEL_TRIES)
