"""Store calls that ride out a database outage, for ``run.db_retry_s`` in all.

Connection failures, a read-only database and timeouts are retried with
:class:`~prompt_analyzer.backoff.Backoff`.  Every attempt (the pool's wait for a connection and the
statement) is bounded by the time left, so the whole call ends within ``db_retry_s`` (plus one second)
however the database fails; once the stop is forced (a second signal) nothing is retried and no retry
wait goes on.  Errors in the data (a value PostgreSQL refuses) are
not retried: they are raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from ..backoff import DB_FIRST_S, DB_MAX_S, Backoff
from ..db import DatabaseUnavailable, Store
from .stopping import Stop

log = logging.getLogger("prompt_analyzer.engine")

P = ParamSpec("P")
T = TypeVar("T")


# The database, not the statement: down, restarting, or read-only for a while (a failover promotes the
# standby within seconds; Supabase turns a full disk read-only).
_RETRIED = (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)


class RetryingCalls:
    def __init__(self, store: Store, *, where: str, within_s: float, stop: Stop) -> None:
        self.store = store
        self.where = where
        self.within_s = within_s
        self.stop = stop

    async def __call__(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        backoff = Backoff(DB_FIRST_S, DB_MAX_S, within_s=self.within_s, jitter=False)
        while True:
            try:
                async with asyncio.timeout((backoff.remaining() or 0.0) + 1.0):
                    return await fn(*args, **kwargs)
            except (*_RETRIED, PoolTimeout, TimeoutError) as e:
                delay = None if self.stop.forced else backoff.next()
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                if delay is None:
                    raise DatabaseUnavailable(f"lost the database at {self.where}: {first}") from None
                log.warning("database error, retrying in %.1fs: %s", delay, first)
                await self.stop.until_forced(delay)  # the pool checks each connection it hands out
                if self.stop.forced:
                    raise DatabaseUnavailable(f"lost the database at {self.where}: {first}") from None
