"""The last step of a pair, and its first: what is written about it.

Claims and answers of all workers are grouped (:mod:`.writer`): one round trip serves many calls.
An answer is paid for, so it is never dropped: what the database will not take now (it is down, or the
run ends while the write waits) goes to the spool; what it refuses for good (a value out of a column's
range, after NULs were replaced) ends the pair ``unwritable`` with the reason, and never fails the other
answers of its group.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from ..db import CitationRow, DatabaseUnavailable, PairWork, Store, SuccessRecord
from ..providers import ProviderError, ProviderResult
from ..redact import scrub
from ..statuses import ErrorClass
from .dbcalls import RetryingCalls
from .spool import Spool
from .writer import Cancelled, Grouped

log = logging.getLogger("prompt_analyzer.engine")


class UnwritableAnswer(ProviderError):
    """An answer PostgreSQL refused even after sanitising (a value out of a column's range, say)."""

    error_class = ErrorClass.UNWRITABLE
    retryable = False


class Spooled(Exception):
    """The answer is in the spool, not in the database (which is gone)."""

    def __init__(self, cause: DatabaseUnavailable) -> None:
        super().__init__(str(cause))
        self.cause = cause


# What PostgreSQL says about one answer's values.  Any other refusal (a read-only database after a
# failover, a revoked privilege, a schema not migrated) is about the database: nothing is written, the
# answers go to the spool and the run stops as if the database were down.
_REFUSED_DATA = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


def _unwilling(exc: psycopg.Error) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"the database refuses writes: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:500]


class Recorder:
    def __init__(
        self, store: Store, db: RetryingCalls, *, owner: str, spool: Spool | None, secrets: Sequence[str],
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.db = db
        self.owner = owner
        self.spool = spool
        self.secrets = list(secrets)
        self.extra_metadata = dict(extra_metadata or {})
        self.writer: Grouped[SuccessRecord, str | None] = Grouped(self._write_successes)
        self.claimer: Grouped[tuple[PairWork, float], uuid.UUID | None] = Grouped(self._claim_pairs)
        self.counter: Grouped[tuple[uuid.UUID, float], bool] = Grouped(self._count_attempts)

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.close_claims()

    async def close_claims(self) -> None:
        """No claim or attempt may commit after this (the claims are about to be released)."""
        await self.claimer.aclose()
        await self.counter.aclose()

    # -- claims ----------------------------------------------------------------------------------

    async def claim(self, pair: PairWork, lease_s: float) -> uuid.UUID | None:
        """Claim the pair and count its first attempt; None if it succeeded or a live claim holds it."""
        return await self.claimer.submit((pair, lease_s))

    async def _claim_pairs(self, items: Sequence[tuple[PairWork, float]]) -> list[uuid.UUID | None]:
        return await self.db(self.store.claim_many, items, owner=self.owner)

    async def count_attempt(self, response_id: uuid.UUID, lease_s: float) -> bool:
        """Count a call of a claimed pair before making it; False if the claim is no longer ours (do not call)."""
        return await self.counter.submit((response_id, lease_s))

    async def _count_attempts(self, items: Sequence[tuple[uuid.UUID, float]]) -> list[bool]:
        return await self.db(self.store.count_attempts, items, owner=self.owner)

    async def unclaim(self, response_id: uuid.UUID) -> None:
        """The counted attempt was never made: uncount it, the pair ends ``interrupted``."""
        await self.db(self.store.unclaim, response_id, owner=self.owner)

    # -- answers ---------------------------------------------------------------------------------

    def success_record(
        self, pair: PairWork, response_id: uuid.UUID, result: ProviderResult, attempts: int, errors: Sequence[str]
    ) -> SuccessRecord:
        meta: dict[str, Any] = {
            **result.metadata,
            **self.extra_metadata,
            "request_id": result.request_id,
            "attempts_this_run": attempts,
            "raw": result.raw,
        }
        if errors:
            meta["retried_errors"] = [scrub(m, self.secrets)[:300] for m in errors[-5:]]
        return SuccessRecord(
            response_id=response_id,
            job_id=pair.job_id,
            model_version=result.model_version,
            response_text=result.text,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            total_tokens=result.total_tokens,
            cost=result.cost,
            execution_time_ms=result.latency_ms,
            metadata=meta,
            citations=[CitationRow(c.position, c.url, c.domain, c.title, c.cited, c.site,
                                   dict(c.metadata) if c.metadata else None) for c in result.citations],
        )

    async def success(self, rec: SuccessRecord) -> UnwritableAnswer | None:
        """Write an answer.  None once committed (or kept in the spool when the run is ending); the
        database's refusal as an error otherwise; :class:`Spooled` if the database is gone."""
        try:
            refused = await self.writer.submit(rec)
        except DatabaseUnavailable as e:
            self.keep(rec, e)
            raise Spooled(e) from None
        except asyncio.CancelledError as e:
            self.keep(rec, e)  # the run is ending (grace over) while the write waits: spool, then go
            raise
        except Exception as e:  # Cancelled by the writer's close, or a bug: the answer is kept all the same
            self.keep(rec, e)
            if not isinstance(e, Cancelled):
                log.exception("unexpected error writing an answer; kept in the spool")
            return None
        return None if refused is None else UnwritableAnswer(f"the database refused the answer: {refused}")

    async def _write_successes(self, recs: Sequence[SuccessRecord]) -> list[str | None]:
        """Per answer: None once committed, or why PostgreSQL refused it.  One refused answer never
        fails its group: the group is written again one answer at a time."""
        try:
            await self.db(self.store.record_successes, recs)
            return [None] * len(recs)
        except _REFUSED_DATA as e:
            if len(recs) == 1:
                return [_reason(e)]
        except psycopg.Error as e:
            raise _unwilling(e) from None
        out: list[str | None] = []
        for rec in recs:
            try:
                await self.db(self.store.record_successes, [rec])
                out.append(None)
            except _REFUSED_DATA as e:
                out.append(_reason(e))
            except psycopg.Error as e:
                raise _unwilling(e) from None
        return out

    def keep(self, rec: SuccessRecord, why: BaseException) -> None:
        """A paid answer the database did not take: into the spool, never dropped."""
        if self.spool is None:
            log.error("answer %s could not be written and there is no spool: %s", rec.response_id, why)
            return
        self.spool.append(rec)

    # -- errors ----------------------------------------------------------------------------------

    async def failure(
        self, pair: PairWork, response_id: uuid.UUID, exc: ProviderError, attempts: int, errors: Sequence[str]
    ) -> None:
        meta = {
            **self.extra_metadata,
            "attempts_this_run": attempts,
            "errors": [scrub(m, self.secrets)[:300] for m in errors[-5:]],
            "status_code": exc.status,
            "request_id": exc.request_id,
        }
        await self.db(
            self.store.record_error, response_id, pair.job_id, error_class=exc.error_class,
            message=scrub(exc.message, self.secrets)[:1000], metadata=meta,
        )
