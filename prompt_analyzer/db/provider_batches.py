"""The SQL of batch mode: ``provider_batches`` rows and the pairs each one holds.

A provider batch's pairs are ``ai_responses`` rows claimed with the owner ``provider-batch:<id>`` (see
:func:`owner_of`) and a lease that outlives the provider's 24-hour window, so neither a live run nor a
worker claims them while the provider works on them.  Answers and errors are written by the store's
usual statements (the engine's :class:`~prompt_analyzer.engine.record.Recorder`); only what is
particular to provider batches lives here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql
from psycopg.rows import class_row

from ..statuses import ProviderBatchState
from .store import PairWork, Store

OWNER_PREFIX = "provider-batch:"


def owner_of(provider_batch: uuid.UUID) -> str:
    """The ``claimed_by`` of the pairs a provider batch holds."""
    return f"{OWNER_PREFIX}{provider_batch}"


@dataclass(frozen=True, slots=True)
class ProviderBatchRow:
    id: uuid.UUID
    analysis_batch_id: uuid.UUID
    platform: str
    provider: str
    provider_batch_id: str | None
    state: str
    provider_state: str | None
    request_count: int
    completed_count: int
    failed_count: int
    round: int
    error_message: str | None
    created_at: datetime
    submitted_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    collected_at: datetime | None

    @property
    def is_open(self) -> bool:
        return ProviderBatchState(self.state).open


@dataclass(frozen=True, slots=True)
class Member:
    """One pair of a provider batch: its row id (the request's custom_id) and the pair itself."""

    response_id: uuid.UUID
    pair: PairWork
    attempts: int


_COLUMNS = sql.SQL(
    "id, analysis_batch_id, platform, provider, provider_batch_id, state, provider_state, request_count, "
    "completed_count, failed_count, round, error_message, created_at, submitted_at, expires_at, ended_at, "
    "collected_at"
)


class ProviderBatches:
    """Reads and writes of ``provider_batches`` over the store's pool."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pool = store.pool

    async def _one(self, query: sql.Composable, params: object) -> ProviderBatchRow | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(ProviderBatchRow)) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()

    async def _all(self, query: sql.Composable, params: object) -> list[ProviderBatchRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(ProviderBatchRow)) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def get(self, pb_id: uuid.UUID) -> ProviderBatchRow | None:
        return await self._one(sql.SQL("SELECT {} FROM provider_batches WHERE id = %s").format(_COLUMNS), (pb_id,))

    async def for_batch(self, batch_id: uuid.UUID, *, open_only: bool = False) -> list[ProviderBatchRow]:
        """The provider batches of one of our batches, oldest first."""
        return await self._all(
            sql.SQL("""SELECT {} FROM provider_batches
                       WHERE analysis_batch_id = %(b)s
                         AND (NOT %(open)s OR state IN ('submitting', 'in_progress', 'ended'))
                       ORDER BY created_at, id""").format(_COLUMNS),
            {"b": batch_id, "open": open_only},
        )

    async def known_ids(self, provider: str, since: datetime) -> set[str]:
        """The provider's batch ids we recorded since ``since`` (an orphan is none of these)."""
        rows = await self.store.fetchall(
            """SELECT provider_batch_id FROM provider_batches
               WHERE provider = %s AND provider_batch_id IS NOT NULL AND created_at >= %s""",
            (provider, since),
        )
        return {r["provider_batch_id"] for r in rows}

    async def create_intent(
        self, batch_id: uuid.UUID, platform: str, provider: str, *, round_: int
    ) -> ProviderBatchRow:
        """The row of a provider batch about to be submitted (state ``submitting``), committed first."""
        row = await self._one(
            sql.SQL("""INSERT INTO provider_batches (analysis_batch_id, platform, provider, state, round)
                       VALUES (%s, %s, %s, 'submitting', %s) RETURNING {}""").format(_COLUMNS),
            (batch_id, platform, provider, round_),
        )
        assert row is not None
        return row

    async def set_request_count(self, pb_id: uuid.UUID, n: int) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE provider_batches SET request_count = %s, updated_at = now() WHERE id = %s", (n, pb_id))

    async def record_submitted(
        self, pb_id: uuid.UUID, *, provider_batch_id: str, provider_state: str | None,
        expires_at: datetime | None, submitted_at: datetime | None = None,
    ) -> None:
        """The provider accepted the batch: its id and state, before anything else happens."""
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE provider_batches SET provider_batch_id = %s, state = 'in_progress', provider_state = %s,
                          expires_at = %s, submitted_at = coalesce(%s, now()), updated_at = now()
                   WHERE id = %s""",
                (provider_batch_id, provider_state, expires_at, submitted_at, pb_id),
            )

    async def record_progress(
        self, pb_id: uuid.UUID, *, state: ProviderBatchState, provider_state: str | None, completed: int,
        failed: int, ended_at: datetime | None = None, error_message: str | None = None,
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE provider_batches SET state = %s, provider_state = %s, completed_count = %s,
                          failed_count = %s, ended_at = coalesce(ended_at, %s),
                          error_message = coalesce(%s, error_message), updated_at = now()
                   WHERE id = %s""",
                (state, provider_state, completed, failed, ended_at, error_message, pb_id),
            )

    async def close(self, pb_id: uuid.UUID, state: ProviderBatchState, *, error_message: str | None = None) -> None:
        """A final state: collected, expired, cancelled, failed or abandoned."""
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE provider_batches SET state = %s, error_message = coalesce(%s, error_message),
                          collected_at = CASE WHEN %s = 'collected' THEN now() END, updated_at = now()
                   WHERE id = %s""",
                (state, error_message, state, pb_id),
            )

    async def members(self, pb_id: uuid.UUID) -> list[Member]:
        """The pairs the provider batch still holds (``processing``, claimed by it), in row id order."""
        rows = await self.store.fetchall(
            """SELECT r.id, r.analysis_job_id, r.prompt_tracking_id, r.project_id, r.prompt_text, r.platform,
                      r.attempts
               FROM ai_responses r
               WHERE r.claimed_by = %s AND r.status = 'processing'
               ORDER BY r.id""",
            (owner_of(pb_id),),
        )
        return [Member(r["id"], PairWork(r["analysis_job_id"], r["prompt_tracking_id"], r["project_id"],
                                         r["prompt_text"], r["platform"]), int(r["attempts"])) for r in rows]

    async def release(
        self, pb_id: uuid.UUID, *, message: str, uncount: bool, response_ids: Sequence[uuid.UUID] | None = None
    ) -> int:
        """Pairs the provider batch will not answer (expired, cancelled, never submitted) end
        ``interrupted``: not failed, claimable again by the next run with the key.  ``uncount``: the
        request never reached the provider, so it is taken off ``attempts``.  ``response_ids``: only those."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """UPDATE ai_responses SET status = 'error', error_class = 'interrupted', error_message = %(msg)s,
                          attempts = CASE WHEN %(uncount)s THEN greatest(attempts - 1, 0) ELSE attempts END,
                          claimed_by = NULL, claim_expires_at = NULL, updated_at = now()
                   WHERE claimed_by = %(owner)s AND status = 'processing'
                     AND (%(all)s OR id = ANY(%(ids)s::uuid[]))""",
                {"msg": message, "uncount": uncount, "owner": owner_of(pb_id), "all": response_ids is None,
                 "ids": list(response_ids or [])},
            )
            return cur.rowcount

    async def take_back(
        self, response_ids: Sequence[uuid.UUID], *, owner: str, lease_s: float, count: bool
    ) -> int:
        """Failed requests to be asked again: claimed by ``owner`` (the next provider batch, or a live
        runner near the deadline); only rows in error that no one holds.  ``count``: the new attempt is
        counted here (a provider batch); a live call counts its own when it claims the row."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE ai_responses SET status = 'processing',
                          attempts = attempts + CASE WHEN %(count)s THEN 1 ELSE 0 END, claimed_by = %(owner)s,
                          claim_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now()
                   WHERE id = ANY(%(ids)s::uuid[]) AND status = 'error' AND claimed_by IS NULL""",
                {"owner": owner, "lease": lease_s, "ids": list(response_ids), "count": count},
            )
            return cur.rowcount
