"""Taking a batch through its platforms as fast as their rate limits allow.

Two schedules share everything below the lane:

* ``auto`` (default): each platform is a lane with its own producer (keyset pages of the batch's
  pairs still to do on that platform), ``max_concurrency`` workers and its pacer.  Lanes are
  independent: a slow or tightly limited platform never holds the others back, and memory stays
  flat (at most one page plus the queue per lane).
* ``prompt_concurrency = N``: N prompts in flight, each waiting for all its platforms, as the
  original service did.  Kept for comparison and for users who relied on it.

A pair is claimed (its ``ai_responses`` row set ``processing`` with a lease) just before its first
call, every call is counted in ``attempts`` before it is made, and a success is committed with its
citations and the job's counters in one transaction before the pair counts as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..config import PlatformSettings, Settings
from ..db import CitationRow, DatabaseUnavailable, PairWork, Store, SuccessRecord
from ..db.connect import Target, connect_kwargs
from ..providers import Provider, ProviderError, ProviderResult, QuotaExhausted, RateLimited
from ..redact import scrub
from .breaker import CircuitBreaker
from .pacing import Pacer, TokenBudget
from .retry import quota_exhausted, should_retry, wait_seconds
from .spool import Spool
from .stopping import Stop
from .writer import Cancelled, Grouped

log = logging.getLogger("prompt_analyzer.engine")

FINISHED = ("completed", "completed_with_errors")


class BatchLocked(RuntimeError):
    """Another process is running this batch (exit 75)."""


@dataclass
class PlatformProgress:
    total: int = 0  # pairs of the batch on this platform
    done_before: int = 0  # succeeded in an earlier run
    success: int = 0
    error: int = 0
    in_flight: int = 0
    calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    breaker: str | None = None

    @property
    def finished(self) -> int:
        return self.done_before + self.success + self.error


@dataclass
class Progress:
    platforms: dict[str, PlatformProgress]
    started: float = field(default_factory=time.monotonic)
    stopping: str | None = None

    @property
    def total(self) -> int:
        return sum(p.total for p in self.platforms.values())

    @property
    def finished(self) -> int:
        return sum(p.finished for p in self.platforms.values())


@dataclass
class Outcome:
    batch: dict[str, Any]
    progress: Progress
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM"

    @property
    def status(self) -> str:
        return str(self.batch["status"])


class _StopWork(Exception):
    """Raised inside a retry loop when the run is stopping: no further attempt."""


class UnwritableAnswer(ProviderError):
    """An answer PostgreSQL refused even after sanitising (a value out of a column's range, say)."""

    error_class = "unwritable"
    retryable = False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:500]


def batch_lock_key(batch_id: uuid.UUID) -> int:
    return (batch_id.int >> 64) - (1 << 63)  # a signed bigint derived from the batch id


class BatchLock:
    """``pg_try_advisory_lock`` held on its own connection for the whole run.

    Its own connection, not the pool's: the lock lives as long as the session, and the session ends
    when the process dies, which is what proves a claim's owner gone.
    """

    def __init__(self, target: Target, batch_id: uuid.UUID) -> None:
        self.target = target
        self.key = batch_lock_key(batch_id)
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def acquire(self) -> bool:
        self.conn = await psycopg.AsyncConnection.connect(
            self.target.conninfo, autocommit=True, **connect_kwargs(self.target)
        )
        cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (self.key,))
        row = await cur.fetchone()
        return bool(row and row["ok"])

    async def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None


@dataclass
class Lane:
    """One platform's provider, pacer, budget, breaker and in-flight limit."""

    settings: PlatformSettings
    provider: Provider
    pacer: Pacer
    limit: asyncio.Semaphore
    breaker: CircuitBreaker
    budget: TokenBudget | None = None
    avg_output_tokens: float = 400.0

    @property
    def name(self) -> str:
        return self.settings.name


class Runner:
    def __init__(
        self,
        store: Store,
        target: Target,
        settings: Settings,
        platforms: Sequence[str],
        provider_factory: Callable[[str], Provider],
        *,
        extra_metadata: Mapping[str, Any] | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.db_error: DatabaseUnavailable | None = None
        self.target = target
        self.settings = settings
        self.run = settings.run
        self.platforms = list(platforms)
        self.provider_factory = provider_factory
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.extra_metadata = dict(extra_metadata or {})
        self.secrets = settings.secrets()
        self.lanes: dict[str, Lane] = {}
        self.progress = Progress({name: PlatformProgress() for name in self.platforms})
        self.stop = Stop()
        self.interrupted_by: str | None = None
        # Answers and claims of all workers are grouped: one round trip serves many calls.
        self.writer: Grouped[SuccessRecord, str | None] = Grouped(self._write_successes)
        self.claimer: Grouped[tuple[PairWork, float], uuid.UUID | None] = Grouped(self._claim_pairs)

    def _open_lanes(self) -> None:
        """Clients are made only once the batch lock is ours (an overlapping run exits at once)."""
        for name in self.platforms:
            ps = self.settings.platform(name)
            self.lanes[name] = Lane(
                settings=ps,
                provider=self.provider_factory(name),
                pacer=Pacer(ps.rpm),
                limit=asyncio.Semaphore(ps.max_concurrency),
                breaker=CircuitBreaker(self.run.breaker_threshold),
                budget=TokenBudget(ps.tpm) if ps.tpm else None,
            )

    async def _write_successes(self, recs: Sequence[SuccessRecord]) -> list[str | None]:
        """Per answer: None once committed, or why PostgreSQL refused it.  One refused answer never
        fails its group: the group is written again one answer at a time."""
        try:
            await self._db(self.store.record_successes, recs)
            return [None] * len(recs)
        except psycopg.Error as e:  # the data, not the connection (_db retries those)
            if len(recs) == 1:
                return [_reason(e)]
        out: list[str | None] = []
        for rec in recs:
            try:
                await self._db(self.store.record_successes, [rec])
                out.append(None)
            except psycopg.Error as e:
                out.append(_reason(e))
        return out

    async def _claim_pairs(self, items: Sequence[tuple[PairWork, float]]) -> list[uuid.UUID | None]:
        result: list[uuid.UUID | None] = await self._db(self.store.claim_many, items, owner=self.owner)
        return result

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.claimer.aclose()
        for lane in self.lanes.values():
            with contextlib.suppress(Exception):  # closing is best effort at exit
                await lane.provider.aclose()

    # ------------------------------------------------------------------------------ control

    def request_stop(self, reason: str) -> None:
        """Stop starting calls; in-flight calls get the grace period to finish.  A second signal ends
        the grace period at once (calls still in flight stay resumable)."""
        self.stop.request(reason)
        if self.interrupted_by is None:
            self.interrupted_by = reason
            self.progress.stopping = reason

    def lease_s(self, lane: Lane) -> float:
        return self.run.lease_s or lane.settings.timeout_s + 60.0

    # ------------------------------------------------------------------------------ batch

    async def execute(self, batch: dict[str, Any]) -> Outcome:
        batch_id: uuid.UUID = batch["id"]
        lock = BatchLock(self.target, batch_id)
        try:
            if not await lock.acquire():
                raise BatchLocked(f"batch {batch['idempotency_key'] or batch_id} is being run by another process")
            self._open_lanes()
            # We hold the batch lock: whoever left pairs `processing` is gone.
            reclaimed = await self._db(self.store.expire_claims, batch_id, except_owner=self.owner)
            if reclaimed:
                log.info("reclaimed %d pair(s) left processing by a stopped run", reclaimed)
            counts = await self._db(self.store.pair_counts, batch_id, self.platforms)
            for name, pp in self.progress.platforms.items():
                row = counts.get(name)
                if row:
                    pp.total = int(row["total"])
                    pp.done_before = int(row["success"])
            await self._db(self.store.set_batch_status, batch_id, "running", finished=False)
            self.progress.started = time.monotonic()
            work = (
                self._run_lanes(batch_id)
                if self.run.prompt_concurrency is None
                else self._run_prompts(batch_id, self.run.prompt_concurrency)
            )
            await self.stop.run_with_grace(work, self.run.grace_period_s)
            if self.db_error is not None:
                raise self.db_error  # answers received meanwhile are in the spool
            return await self._finish(batch_id)
        finally:
            await lock.release()

    async def _finish(self, batch_id: uuid.UUID) -> Outcome:
        released = await self._db(self.store.release_claims, self.owner)
        if released:
            log.info("%d call(s) did not answer before the stop; their pairs stay resumable", released)
        for name, lane in self.lanes.items():
            if lane.breaker.open and not self.stop.requested:
                await self._db(
                    self.store.fail_remaining, batch_id, name, error_class=lane.breaker.error_class,
                    message=scrub(f"not called: {lane.breaker.reason}", self.secrets)[:1000],
                )
        await self._db(self.store.reconcile_jobs, batch_id)
        # The batch's status comes from all its pairs, not from the platforms this process ran.
        counts = await self._db(self.store.pair_counts, batch_id)
        unfinished = sum(int(r["total"]) - int(r["success"]) for r in counts.values())
        if self.interrupted_by:
            status, finished = "interrupted", False
        elif unfinished:
            status, finished = "completed_with_errors", True
        else:
            status, finished = "completed", True
        await self._db(self.store.set_batch_status, batch_id, status, finished=finished)
        batch = await self._db(self.store.refresh_batch_counters, batch_id)
        for name, lane in self.lanes.items():
            self.progress.platforms[name].breaker = lane.breaker.reason
        return Outcome(batch=batch, progress=self.progress, interrupted_by=self.interrupted_by)

    # ------------------------------------------------------------------------------ schedules

    async def _run_lanes(self, batch_id: uuid.UUID) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes.values():
                tg.create_task(self._lane(batch_id, lane))

    async def _lane(self, batch_id: uuid.UUID, lane: Lane) -> None:
        workers = lane.settings.max_concurrency
        queue: asyncio.Queue[PairWork | None] = asyncio.Queue(maxsize=workers * 2)

        async def produce() -> None:
            try:
                await produce_pages()
            except DatabaseUnavailable as e:
                self._lost_database(e)
            # One end marker per worker.  Not in a `finally`: when cancelled, the task group cancels the
            # workers too, and a put on a full queue would wait for ever for workers that are gone.
            for _ in range(workers):
                await queue.put(None)

        async def produce_pages() -> None:
            after: uuid.UUID | None = None
            while not self.stop.requested and not lane.breaker.open:
                page = await self._db(
                    self.store.pending_pairs, batch_id, lane.name, after=after, limit=self.run.page_size
                )
                if not page:
                    break
                for pair in page:
                    if self.stop.requested or lane.breaker.open:
                        break
                    await queue.put(pair)
                after = page[-1].job_id

        async def work() -> None:
            while (pair := await queue.get()) is not None:
                if self.stop.requested or lane.breaker.open:
                    continue  # drain: the producer is stopping too
                await self._call_pair(lane, pair)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce())
            for _ in range(workers):
                tg.create_task(work())

    async def _run_prompts(self, batch_id: uuid.UUID, n: int) -> None:
        """The original design: N prompts in flight, each waiting for its slowest platform."""
        slots = asyncio.Semaphore(n)
        after: uuid.UUID | None = None
        async with asyncio.TaskGroup() as tg:
            while not self.stop.requested:
                try:
                    page = await self._db(
                        self.store.pending_jobs, batch_id, self.platforms, after=after, limit=self.run.page_size
                    )
                except DatabaseUnavailable as e:
                    self._lost_database(e)  # prompts in flight finish within the grace period
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
                        tg.create_task(self._call_pair(lane, pair))
        finally:
            slots.release()

    # ------------------------------------------------------------------------------ one pair

    def _lost_database(self, exc: DatabaseUnavailable) -> None:
        """The database stayed down past db_retry_s: stop starting calls, keep what arrives."""
        if self.db_error is None:
            self.db_error = exc
            log.error("%s; stopping the run", exc, extra={"event": "database_lost"})
        self.request_stop("database")

    async def _call_pair(self, lane: Lane, pair: PairWork) -> None:
        async with lane.limit:
            if self.stop.requested:
                return
            try:
                await self._call_pair_limited(lane, pair)
            except DatabaseUnavailable as e:
                self._lost_database(e)

    async def _call_pair_limited(self, lane: Lane, pair: PairWork) -> None:
        pp = self.progress.platforms[lane.name]
        response_id: uuid.UUID | None = None
        attempts = 0
        errors: list[str] = []
        lease = self.lease_s(lane)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            assert exc is not None
            return wait_seconds(exc, state.attempt_number, base=self.run.backoff_base_s, cap=self.run.backoff_max_s)

        def before_sleep(state: RetryCallState) -> None:
            pp.retries += 1

        retrying = AsyncRetrying(
            stop=stop_after_attempt(lane.settings.max_attempts),
            retry=retry_if_exception(lambda e: should_retry(e) and not self.stop.requested),
            wait=wait,
            before_sleep=before_sleep,
            sleep=self.stop.backoff,  # a stop ends a backoff at once
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if self.stop.requested or lane.breaker.open:
                        raise _StopWork
                    # Claim (or count the attempt) before pacing: database latency must not sit between
                    # the pacer's evenly spaced slots and the requests, or they leave in bursts.
                    if response_id is None:
                        response_id = await self.claimer.submit((pair, lease))
                        if response_id is None:
                            return  # succeeded meanwhile, or held by a live claim elsewhere
                    else:
                        await self._db(self.store.count_attempt, response_id, owner=self.owner, lease_s=lease)
                    estimate = len(pair.prompt_text) // 4 + int(lane.avg_output_tokens)
                    if lane.budget is not None:
                        await lane.budget.reserve(estimate, self.stop.sleep)
                    await lane.pacer.acquire(self.stop.sleep)
                    # The last moment before the request: a stop, an auth error or a quota gone while this
                    # worker waited for its slot means this call must not leave.
                    if self.stop.requested or lane.breaker.open:
                        await self._db(self.store.unclaim, response_id, owner=self.owner)
                        raise _StopWork
                    attempts += 1
                    pp.calls += 1
                    pp.in_flight += 1
                    try:
                        result = await lane.provider.ask(pair.prompt_text)
                    except RateLimited as e:
                        pp.rate_limited += 1
                        errors.append(f"{e.error_class}: {e.message}")
                        if quota_exhausted(e):
                            self._quota_gone(lane, e)
                            raise QuotaExhausted(e.message, retry_after=e.retry_after, status=e.status,
                                                 request_id=e.request_id) from None
                        # Rate limiting slows the whole platform (hinted, or backing off), never fails it.
                        lane.pacer.pause(wait_seconds(e, attempt.retry_state.attempt_number,
                                                      base=self.run.backoff_base_s, cap=self.run.backoff_max_s))
                        raise
                    except ProviderError as e:
                        errors.append(f"{e.error_class}: {e.message}")
                        raise
                    finally:
                        pp.in_flight -= 1
                    if lane.budget is not None and result.total_tokens is not None:
                        lane.budget.correct(estimate, result.total_tokens)
        except _StopWork:
            return
        except ProviderError as e:
            if response_id is None:
                return
            if self.stop.requested and e.retryable:
                return  # stopped between attempts: ends `interrupted` at the finish, resumable
            await self._record_failure(lane, pair, response_id, e, attempts, errors)
            return
        except Exception as e:  # a bug or an SDK surprise must not stop the batch
            if isinstance(e, DatabaseUnavailable | asyncio.CancelledError):
                raise
            log.exception("unexpected error calling %s", lane.name)
            if response_id is not None:
                err = ProviderError(f"internal error: {type(e).__name__}: {e}")
                err.error_class = "internal"
                await self._record_failure(lane, pair, response_id, err, attempts, errors)
            return
        assert response_id is not None
        await self._record_success(lane, pair, response_id, result, attempts, errors)

    def _quota_gone(self, lane: Lane, exc: RateLimited) -> None:
        wait_s = exc.retry_after or 0.0
        reason = f"quota exhausted: the provider asks to wait {wait_s:,.0f} s"
        if lane.breaker.trip(reason, "quota_exhausted"):
            log.warning("%s: %s; no more calls this run, its pairs are left for `analyze rerun`", lane.name,
                        reason, extra={"event": "quota_exhausted", "platform": lane.name})

    def _keep(self, rec: SuccessRecord, why: BaseException) -> None:
        """A paid answer the database did not take: into the spool, never dropped."""
        if self.spool is None:
            log.error("answer %s could not be written and there is no spool: %s", rec.response_id, why)
            return
        self.spool.append(rec)

    async def _record_success(
        self, lane: Lane, pair: PairWork, response_id: uuid.UUID, result: ProviderResult, attempts: int,
        errors: list[str],
    ) -> None:
        meta: dict[str, Any] = {
            **result.metadata,
            **self.extra_metadata,
            "request_id": result.request_id,
            "attempts_this_run": attempts,
            "raw": result.raw,
        }
        if errors:
            meta["retried_errors"] = [scrub(m, self.secrets)[:300] for m in errors[-5:]]
        rec = SuccessRecord(
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
            citations=[CitationRow(c.position, c.url, c.domain, c.title, c.cited) for c in result.citations],
        )
        try:
            refused = await self.writer.submit(rec)
        except DatabaseUnavailable as e:
            self._keep(rec, e)
            self._lost_database(e)
            refused = None
        except asyncio.CancelledError as e:
            self._keep(rec, e)  # the run is ending (grace over) while the database is slow: spool, then go
            raise
        except Exception as e:  # Cancelled by the writer's close, or a bug: the answer is kept all the same
            self._keep(rec, e)
            if not isinstance(e, Cancelled):
                log.exception("unexpected error writing an answer of %s; kept in the spool", lane.name)
            refused = None
        if refused is not None:
            err = UnwritableAnswer(f"the database refused the answer: {refused}")
            log.warning("%s: %s", lane.name, err.message,
                        extra={"event": "unwritable", "platform": lane.name, "prompt_id": pair.prompt_id})
            await self._record_failure(lane, pair, response_id, err, attempts, errors)
            return
        pp = self.progress.platforms[lane.name]
        pp.success += 1
        pp.tokens += result.total_tokens or 0
        pp.cost += result.cost or 0
        if result.output_tokens:
            lane.avg_output_tokens = 0.9 * lane.avg_output_tokens + 0.1 * result.output_tokens
        lane.breaker.success()

    async def _record_failure(
        self, lane: Lane, pair: PairWork, response_id: uuid.UUID, exc: ProviderError, attempts: int,
        errors: list[str],
    ) -> None:
        message = scrub(exc.message, self.secrets)[:1000]
        meta = {
            **self.extra_metadata,
            "attempts_this_run": attempts,
            "errors": [scrub(m, self.secrets)[:300] for m in errors[-5:]],
            "status_code": exc.status,
            "request_id": exc.request_id,
        }
        await self._db(
            self.store.record_error, response_id, pair.job_id, error_class=exc.error_class, message=message,
            metadata=meta,
        )
        self.progress.platforms[lane.name].error += 1
        if lane.breaker.failure(exc):
            log.warning("%s: circuit open, no more calls this run: %s", lane.name,
                        scrub(lane.breaker.reason or "", self.secrets),
                        extra={"event": "circuit_open", "platform": lane.name, "prompt_id": pair.prompt_id,
                               "error_class": exc.error_class})

    # ------------------------------------------------------------------------------ database

    async def _db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a store call, retrying connection failures with backoff for ``db_retry_s`` in all: every
        attempt (pool wait and query included) is bounded by what is left, and once the stop is forced
        nothing is retried."""
        deadline = time.monotonic() + self.run.db_retry_s
        delay = 0.5
        while True:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0) + 1.0):
                    return await fn(*args, **kwargs)
            except (psycopg.OperationalError, PoolTimeout, TimeoutError) as e:
                left = deadline - time.monotonic()
                if left < min(delay, 0.5) or self.stop.forced:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise DatabaseUnavailable(f"lost the database at {self.target.where}: {first}") from None
                log.warning("database error, retrying in %.1fs: %s", delay, str(e).strip().splitlines()[:1])
                await asyncio.sleep(min(delay, left))
                # After a server restart every idle connection in the pool is dead: drop them all now
                # rather than meeting them one failed retry at a time.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                        await self.store.pool.check()
                delay = min(delay * 2, 10.0)
