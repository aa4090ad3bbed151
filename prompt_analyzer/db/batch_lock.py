"""Who works on a batch, in rows: worker leases, the coordinator role, and the batch's end decided once.

Every worker (an ``analyze run``, each child of ``run --workers N``, each ``analyze worker``) has a
``batch_workers`` row with a lease it renews by a heartbeat; a row whose lease ran out belongs to a dead
worker, whose claims are then expired so the others take its pairs over.  The coordinator role (an
``analyze run`` on the batch: a second one exits 75) is a row too.  Joining and leaving run in one
transaction each, under the batch row's lock: the first worker to join starts a round, the last one to
leave finishes the batch (status, counters), exactly once.

Rows and row locks are all this needs: each statement is correct through a transaction pooler
(PgBouncer in transaction mode, Supabase's port 6543), where a session advisory lock — what this module
held before — is not.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from ..statuses import FINISHED, BatchStatus
from .provider_batches import OWNER_PREFIX
from .store import _BATCH, _BATCH_B, _RECOMPUTE_BATCH_JOBS, BatchRow, Store

log = logging.getLogger("prompt_analyzer.db")

# Roles.  A supervisor (the parent of `run --workers N`) holds the coordinator role and makes no calls.
COORDINATOR, SUPERVISOR, WORKER = "coordinator", "supervisor", "worker"

_LOCK_BATCH = sql.SQL("SELECT {} FROM analysis_batches WHERE id = %(b)s FOR UPDATE").format(_BATCH)

# Workers whose lease ran out are dead; their claims expire now, so the pairs are taken over at once.
_REAP = """
WITH dead AS (
    UPDATE batch_workers SET state = 'dead', left_at = now()
    WHERE batch_id = %(b)s AND state = 'running' AND lease_expires_at < now()
    RETURNING worker),
expired AS (
    UPDATE ai_responses SET claim_expires_at = now() - interval '1 second'
    WHERE status = 'processing' AND claimed_by IN (SELECT worker FROM dead)
    RETURNING claimed_by)
SELECT worker, (SELECT count(*) FROM expired e WHERE e.claimed_by = dead.worker) AS claims FROM dead
"""

# What is left of the batch for anyone: live claims of other workers, pairs still to do in the round.
# Pairs a provider batch holds are the provider's, not a worker's: they do not keep the batch open (it
# ends ``submitted``, and the next run with its key collects them).
_LEFT = """
SELECT (SELECT count(*) FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id
        WHERE j.batch_id = %(b)s AND r.status = 'processing' AND r.claim_expires_at >= now()
          AND r.claimed_by IS DISTINCT FROM %(w)s
          AND coalesce(r.claimed_by, '') NOT LIKE %(held_by_provider)s) AS held,
       EXISTS (SELECT 1 FROM analysis_jobs j CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
               LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
               WHERE j.batch_id = %(b)s
                 AND (r.id IS NULL OR (r.status = 'processing' AND r.claim_expires_at < now())
                      OR (r.status = 'error' AND (r.error_class = 'interrupted'
                          OR r.updated_at < %(round)s::timestamptz OR %(round)s::timestamptz IS NULL)))) AS todo
"""

# The first worker of a round: no worker is live, so every claim of the batch belongs to the dead, but
# for the pairs a provider batch holds (batch mode: the provider has them, whoever submitted them).
_EXPIRE_ALL_CLAIMS = """
UPDATE ai_responses r SET claim_expires_at = now() - interval '1 second'
FROM analysis_jobs j
WHERE j.batch_id = %(b)s AND r.analysis_job_id = j.id AND r.status = 'processing'
  AND coalesce(r.claimed_by, '') NOT LIKE %(held_by_provider)s
"""

_LIVE = """
SELECT count(*) FILTER (WHERE role <> 'supervisor') AS calling,
       count(*) FILTER (WHERE role IN ('coordinator', 'supervisor') AND worker <> %(w)s) AS coordinators,
       count(*) FILTER (WHERE role = 'supervisor' AND worker <> %(w)s) AS supervisors,
       count(*) FILTER (WHERE worker <> %(w)s) AS others
FROM batch_workers
WHERE batch_id = %(b)s AND state = 'running' AND lease_expires_at >= now()
"""


@dataclass(frozen=True, slots=True)
class Joined:
    batch: BatchRow
    new_round: bool  # no worker was live: this one started the round
    busy: bool  # the coordinator role is held by a live process (nothing was joined)
    finished: bool  # the batch has finished (nothing was joined)
    calling: int  # live workers making calls, this one included
    taken_over: int = 0  # claims of earlier runs expired by this join (a new round)


@dataclass(frozen=True, slots=True)
class Left:
    last: bool  # no other worker was live: this one finished the batch
    batch: BatchRow


@dataclass(frozen=True, slots=True)
class _Round:
    round_started_at: datetime | None


class BatchWorkers:
    """One worker's row on one batch."""

    def __init__(self, store: Store, batch_id: uuid.UUID, worker: str, *, role: str, lease_s: float) -> None:
        self.store = store
        self.batch_id = batch_id
        self.worker = worker
        self.role = role
        self.lease_s = lease_s
        self.round_started_at: datetime | None = None

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"b": self.batch_id, "w": self.worker, "lease": self.lease_s,
                "held_by_provider": OWNER_PREFIX + "%", **extra}

    async def _live(self, conn: AsyncConnection[Any]) -> dict[str, Any]:
        cur = await conn.execute(_LIVE, self._params())
        row = await cur.fetchone()
        assert row is not None
        return dict(row)

    async def join(self, *, reopen: bool = False) -> Joined:
        """Register as a live worker of the batch; the first live worker starts a round (status
        ``running``, the earlier rounds' claims expired).  Nothing is registered when the batch has
        finished (unless ``reopen``: a rerun) or, for the coordinator role, when a live process holds it."""
        async with self.store.pool.connection() as conn, conn.transaction():
            batch = await self._lock(conn)
            if batch.status in FINISHED and not reopen:
                return Joined(batch, False, False, True, 0)
            await self._expire_gone_here(conn)
            await conn.execute(_REAP, self._params())
            live = await self._live(conn)
            if self.role in (COORDINATOR, SUPERVISOR) and live["coordinators"]:
                return Joined(batch, False, True, False, 0)
            new_round = live["others"] == 0
            taken_over = 0
            if new_round:
                taken_over = (await conn.execute(_EXPIRE_ALL_CLAIMS, self._params())).rowcount
                await conn.execute(
                    """UPDATE analysis_batches SET round_started_at = now(), status = 'running', completed_at = NULL,
                              finishing_worker = NULL, updated_at = now() WHERE id = %(b)s""",
                    self._params())
            await conn.execute(
                """INSERT INTO batch_workers (batch_id, worker, role, state, host, pid, lease_expires_at)
                   VALUES (%(b)s, %(w)s, %(role)s, 'running', %(host)s, %(pid)s,
                           now() + make_interval(secs => %(lease)s))
                   ON CONFLICT (batch_id, worker) DO UPDATE SET state = 'running', left_at = NULL,
                       lease_expires_at = EXCLUDED.lease_expires_at""",
                self._params(role=self.role, host=socket.gethostname(), pid=_pid(self.worker)))
            cur = conn.cursor(row_factory=class_row(_Round))
            await cur.execute("SELECT round_started_at FROM analysis_batches WHERE id = %(b)s", self._params())
            rnd = await cur.fetchone()
            self.round_started_at = rnd.round_started_at if rnd else None
            calling = live["calling"] + (0 if self.role == SUPERVISOR else 1)
            return Joined(batch, new_round, False, False, calling, taken_over)

    async def _expire_gone_here(self, conn: AsyncConnection[Any]) -> None:
        """A worker of this host whose process no longer exists (killed, crashed) is dead now, not when
        its lease runs out: a run started again after a crash resumes at once instead of exiting 75.
        Other hosts' workers, and a pid reused by another process, wait for their lease as before."""
        cur = await conn.execute(
            "SELECT worker, pid FROM batch_workers WHERE batch_id = %(b)s AND state = 'running' AND host = %(host)s",
            self._params(host=socket.gethostname()))
        gone = [str(r["worker"]) for r in await cur.fetchall()
                if r["pid"] is not None and not _process_exists(int(r["pid"]))]
        if gone:
            await conn.execute(
                """UPDATE batch_workers SET lease_expires_at = now() - interval '1 second'
                   WHERE batch_id = %(b)s AND worker = ANY(%(gone)s)""", self._params(gone=gone))

    async def _lock(self, conn: AsyncConnection[Any]) -> BatchRow:
        cur = conn.cursor(row_factory=class_row(BatchRow))
        await cur.execute(_LOCK_BATCH, self._params())
        batch = await cur.fetchone()
        if batch is None:
            raise LookupError(f"no batch {self.batch_id}")
        return batch

    async def heartbeat(self) -> int:
        """Renew this worker's lease and its claims' leases, declare the silent workers dead (their
        claims become claimable); the number of live workers making calls."""
        async with self.store.pool.connection() as conn, conn.pipeline(), conn.transaction():
            revived = await conn.execute(
                """UPDATE batch_workers SET lease_expires_at = now() + make_interval(secs => %(lease)s),
                          state = 'running', left_at = NULL
                   WHERE batch_id = %(b)s AND worker = %(w)s AND state IN ('running', 'dead')
                   RETURNING (SELECT state FROM batch_workers o WHERE o.batch_id = %(b)s AND o.worker = %(w)s)
                             AS was""",
                self._params())
            was = await revived.fetchone()
            await conn.execute(
                """UPDATE ai_responses
                   SET claim_expires_at = greatest(claim_expires_at, now() + make_interval(secs => %(lease)s))
                   WHERE claimed_by = %(w)s AND status = 'processing'""",
                self._params())
            reaped = await conn.execute(_REAP, self._params())
            dead = await reaped.fetchall()
            live = await self._live(conn)
        if was is not None and was["was"] == "dead":
            log.warning("this worker was silent past its lease (%.0f s) and was declared dead; its claims were "
                        "taken over: calls in flight may be paid twice (raise [coordination] worker_lease_s)",
                        self.lease_s, extra={"event": "worker_revived", "batch": self.batch_id})
        for row in dead:
            log.warning("worker %s silent past its lease: declared dead, its %d claim(s) taken over", row["worker"],
                        row["claims"], extra={"event": "worker_dead", "batch": self.batch_id})
        return int(live["calling"])

    async def others_live(self) -> int:
        """Live workers of the batch other than this one."""
        async with self.store.pool.connection() as conn:
            return int((await self._live(conn))["others"])

    async def leave(self, *, state: str, calls: int, decide: Callable[[int], BatchStatus]) -> Left:
        """Leave the batch; if no other worker is live, finish it (jobs recomputed, the status
        ``decide(unfinished pairs)`` says, the counters), exactly once.

        Two steps: under the batch row's lock, leave and, if last, become the finishing worker; then,
        outside that transaction (its locks would hold readers of ai_responses), finish, provided no
        worker has joined meanwhile (joining clears the finishing worker; it then finishes the batch)."""
        async with self.store.pool.connection() as conn, conn.transaction():
            batch = await self._lock(conn)
            await conn.execute(
                """UPDATE batch_workers SET state = %(state)s, left_at = now(), calls = %(calls)s
                   WHERE batch_id = %(b)s AND worker = %(w)s""",
                self._params(state=state, calls=calls))
            live = await self._live(conn)
            if batch.status != BatchStatus.RUNNING or live["supervisors"]:
                return Left(False, batch)  # finished, or the supervisor of local workers finishes it
            # Last: no other worker is live, or none has anything left to do (a worker killed before it
            # claimed anything still looks live until its lease ends: it must not hold the batch open).
            cur = await conn.execute(_LEFT, self._params(round=self.round_started_at))
            left = await cur.fetchone()
            assert left is not None
            if left["held"] or (live["others"] and left["todo"]):
                return Left(False, batch)
            cur = await conn.execute(
                """UPDATE analysis_batches SET finishing_worker = %(w)s
                   WHERE id = %(b)s AND finishing_worker IS NULL RETURNING id""", self._params())
            if await cur.fetchone() is None:
                return Left(False, batch)  # another worker is finishing it
        async with self.store.pool.connection() as conn:
            await conn.execute(_RECOMPUTE_BATCH_JOBS, self._params())
            cur = await conn.execute(
                """SELECT count(*) FILTER (WHERE r.status IS DISTINCT FROM 'success') AS unfinished
                   FROM analysis_jobs j CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
                   LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
                   WHERE j.batch_id = %(b)s""",
                self._params())
            row = await cur.fetchone()
        status = decide(int(row["unfinished"]) if row else 0)
        # The status in a transaction of its own: nothing read above stays locked while it commits.
        async with self.store.pool.connection() as conn:
            done = conn.cursor(row_factory=class_row(BatchRow))
            await done.execute(
                sql.SQL("""UPDATE analysis_batches b SET status = %(status)s, updated_at = now(),
                          completed_at = CASE WHEN %(finished)s THEN now() END, finishing_worker = NULL,
                          total_jobs = s.total, completed_jobs = s.done, failed_jobs = s.failed
                   FROM (SELECT count(*) AS total,
                                count(*) FILTER (WHERE status = 'completed') AS done,
                                count(*) FILTER (WHERE status = 'failed') AS failed
                         FROM analysis_jobs WHERE batch_id = %(b)s) s
                   WHERE b.id = %(b)s AND b.finishing_worker = %(w)s AND b.status = 'running' RETURNING {}""")
                .format(_BATCH_B),
                self._params(status=status, finished=status.finished))
            finished = await done.fetchone()
        if finished is None:  # a worker joined meanwhile: it finishes the batch
            current = await self.store.get_batch(self.batch_id)
            assert current is not None
            return Left(False, current)
        return Left(True, finished)


def _process_exists(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _pid(worker: str) -> int | None:
    parts = worker.split(":")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
