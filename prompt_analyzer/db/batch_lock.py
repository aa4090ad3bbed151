"""The batch lock: one process runs a batch at a time.

``pg_try_advisory_lock`` held on a connection of its own for the whole run.  Its own connection, not
the pool's: the lock lives as long as the session, and the session ends when the process dies, which is
what proves a claim's owner gone.  Every statement on it is bounded in time, so a database that vanishes
without closing the socket cannot hold a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg

from .connect import Target, connect_kwargs

_STATEMENT_S = 10.0  # a lock statement on a healthy server takes milliseconds


def batch_lock_key(batch_id: uuid.UUID) -> int:
    return (batch_id.int >> 64) - (1 << 63)  # a signed bigint derived from the batch id


class BatchLock:
    def __init__(self, target: Target, batch_id: uuid.UUID) -> None:
        self.target = target
        self.key = batch_lock_key(batch_id)
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def acquire(self) -> bool:
        """True if this process now holds the batch; False if another one does."""
        self.conn = await psycopg.AsyncConnection.connect(
            self.target.conninfo, autocommit=True, **connect_kwargs(self.target)
        )
        async with asyncio.timeout(_STATEMENT_S):
            cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (self.key,))
            row = await cur.fetchone()
        return bool(row and row["ok"])

    async def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_STATEMENT_S):
                    await self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_STATEMENT_S):
                    await self.conn.close()
            self.conn = None
