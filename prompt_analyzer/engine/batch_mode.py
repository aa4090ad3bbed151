"""Batch mode: a batch's pairs through the providers' batch APIs, at their batch price.

Per platform that has a batch API (:func:`~prompt_analyzer.providers.batch.batch_support`):

1. **resume**: provider batches left open by an earlier run are taken up first; one left ``submitting``
   (the process died between the submit and recording the provider's id) is looked up at the provider
   by its label (:meth:`BatchClient.find`): found, it is recorded and waited for; not found, its pairs
   are released (uncounted) and submitted again.  Nothing is ever submitted twice.
2. **submit**: the pairs still to do, split at the provider's limits into provider batches.  For each,
   the ``provider_batches`` row is committed (``submitting``) and the pairs claimed by it *before* the
   submit, and the provider's id and state right after it.
3. **wait**: polls back off (1 s doubling up to ``batch_poll_max_s``) and end at a stop or at the
   deadline (``batch_deadline_s``), leaving the provider batches open (the batch ends ``submitted``);
   with ``--detach`` the run ends right after the submit.
4. **collect**: every result is read by the live parser and written by the live write path
   (:class:`~.record.Recorder`), at the batch price.  A failed request follows the live retry policy
   (:func:`~.retry.should_retry`, ``max_attempts``): retried in the next provider batch, or live when
   the deadline is near (``batch_live_retry_within_s``).  Requests the provider never processed
   (expired, cancelled) end ``interrupted``: resumable under the same key, and the batch says so.

Platforms without a batch API run live, side by side, through the live schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..backoff import BATCH_POLL_FIRST_S, Backoff
from ..config import Settings
from ..db import PairWork, Store
from ..db.connect import Target
from ..db.provider_batches import Member, ProviderBatches, ProviderBatchRow, owner_of
from ..providers import Provider, ProviderError
from ..providers.batch import BatchClient, Encoded, RemoteBatch
from ..redact import scrub
from ..statuses import BatchStatus, ErrorClass, ProviderBatchState
from .budget import Held
from .lane import Lane
from .record import Spooled
from .retry import should_retry
from .runner import Runner
from .schedules import call_in_slot
from .spool import Spool

log = logging.getLogger("prompt_analyzer.engine")

# A provider batch's pairs are held past the providers' 24-hour window, so no other run claims them.
HOLD_S = 26 * 3600.0
_WRITE_GROUP = 64  # answers handed to the grouped writer at once
_NOTHING = Decimal(0)  # what a failed or unprocessed request of a provider batch is billed
_SIZE_PROBE = str(uuid.UUID(int=0))  # custom_ids are row ids: every one is this long


@dataclass
class BatchPlan:
    """What batch mode does for one run: which platforms go through batch APIs, and how far."""

    platforms: list[str]  # through their batch APIs
    submit: bool = True  # submit pending pairs (False: collect what is open only, `analyze collect`)
    wait: bool = True  # wait for the provider batches (False: --detach, or one look for `collect`)
    live: bool = True  # the other platforms, and live retries, run live
    notes: list[str] = field(default_factory=list)  # why a platform runs live, for the start line


class BatchModeRunner(Runner):
    """A :class:`Runner` whose batch platforms go through the providers' batch APIs."""

    def __init__(
        self, store: Store, target: Target, settings: Settings, platforms: Sequence[str],
        provider_factory: Callable[[str], Provider], batch_factory: Callable[[str], BatchClient], plan: BatchPlan,
        *, extra_metadata: Mapping[str, Any] | None = None, spool: Spool | None = None, reopen: bool = False,
    ) -> None:
        super().__init__(store, target, settings, platforms, provider_factory, extra_metadata=extra_metadata,
                         spool=spool, reopen=reopen)
        self.plan = plan
        self.batch_factory = batch_factory
        self.pbs = ProviderBatches(store)
        self.clients: dict[str, BatchClient] = {}
        self.deadline = time.monotonic() + self.run.batch_deadline_s
        self.unprocessed = 0  # requests the providers expired or cancelled this run
        self.submitted = 0  # provider batches submitted by this run
        self.held: dict[tuple[uuid.UUID, str], Held] = {}  # cost reserved per pair at the provider (job, platform)

    async def aclose(self) -> None:
        for client in self.clients.values():
            try:
                await client.aclose()
            except Exception:  # closing is best effort at exit
                log.debug("closing a batch client failed", exc_info=True)
        await super().aclose()

    async def _open_budget(self, batch_id: uuid.UUID) -> None:
        """The live budget, plus what the requests still at the provider will cost (reserved whatever the
        limit: an earlier run submitted them, they will be billed)."""
        await super()._open_budget(batch_id)
        if self.budget is None:
            return
        for pb in await self.db(self.pbs.for_batch, batch_id, open_only=True):
            for m in await self.db(self.pbs.members, pb.id):
                held = self.budget.take(pb.platform, m.pair.prompt_text, batch=True, force=True)
                if held is not None:
                    self.held[(m.pair.job_id, pb.platform)] = held

    def _reserve(self, pair: PairWork) -> bool:
        """Reserve a request's cost at the batch price before it goes into a provider batch; False when
        the budget has no room (the platform then stops: its other pairs end ``budget_exhausted``)."""
        if self.budget is None:
            return True
        self._settle(pair, _NOTHING)  # a reservation this pair still holds (a submit that never happened)
        held = self.budget.take(pair.platform, pair.prompt_text, batch=True)
        if held is None:
            lane = self.lanes[pair.platform]
            reason = self.budget.exhausted.get(pair.platform, "budget exhausted")
            if lane.breaker.trip(reason, ErrorClass.BUDGET_EXHAUSTED):
                log.warning("%s: %s; no more requests submitted this run, its pairs are left for a run with a "
                            "higher budget", pair.platform, reason,
                            extra={"event": "budget_exhausted", "platform": pair.platform})
            return False
        self.held[(pair.job_id, pair.platform)] = held
        return True

    def _settle(self, pair: PairWork, billed: Decimal | None) -> None:
        """The request's reservation becomes what it was billed (None: unknown, taken at the reservation;
        0: nothing, a failed or unprocessed request)."""
        if self.budget is not None:
            self.budget.settle(self.held.pop((pair.job_id, pair.platform), None), billed)

    # ------------------------------------------------------------------------------ the run

    async def _work(self, batch_id: uuid.UUID) -> None:
        work: list[Any] = [self._platform(batch_id, name) for name in self.plan.platforms if name in self.lanes]
        live = {n: lane for n, lane in self.lanes.items() if n not in self.plan.platforms}
        if self.plan.live and live:
            work.append(self._schedule(live).run(batch_id))
        await asyncio.gather(*work)  # within the run's grace period (Runner.execute)

    async def _amend_status(self, batch_id: uuid.UUID) -> Callable[[BatchStatus], BatchStatus]:
        """The base runner's rule (``submitted`` while provider batches are open), then ``interrupted``
        when a provider expired or cancelled requests (they are resumable under the same key)."""
        base = await super()._amend_status(batch_id)
        unprocessed = self.unprocessed

        def amend(decided: BatchStatus) -> BatchStatus:
            amended = base(decided)
            if amended is BatchStatus.SUBMITTED or not unprocessed or decided is BatchStatus.COMPLETED:
                return amended
            return BatchStatus.INTERRUPTED

        return amend

    async def _platform(self, batch_id: uuid.UUID, name: str) -> None:
        """One platform's provider batches: resume, submit, wait, collect, retry."""
        client = self.clients.get(name)
        if client is None:
            client = self.clients[name] = self.batch_factory(name)
        lane = self.lanes[name]
        rows = [pb for pb in await self.db(self.pbs.for_batch, batch_id) if pb.platform == name]
        for pb in rows:
            if pb.state == ProviderBatchState.SUBMITTING:
                await self._resolve_intent(pb, client)
        round_ = max((pb.round for pb in rows), default=0) + 1
        if self.plan.submit and not self.stop.requested:
            await self._submit_pending(batch_id, name, client, round_)
        poll = Backoff(BATCH_POLL_FIRST_S, self.run.batch_poll_max_s, jitter=False)
        while not self.stop.requested:
            open_rows = [pb for pb in await self.db(self.pbs.for_batch, batch_id, open_only=True)
                         if pb.platform == name]
            self.progress.platforms[name].in_flight = sum(pb.request_count for pb in open_rows)
            if not open_rows:
                if not self.plan.submit and self.plan.live:
                    # a live run that collected: the platform's other pairs (and failed requests) go live
                    await self._schedule({name: lane}).run(batch_id)
                return
            retries: list[tuple[Member, ProviderError]] = []
            for pb in open_rows:
                retries += await self._check(pb, client)
            if retries:
                round_ += 1
                await self._retry(batch_id, name, client, lane, retries, round_)
                poll = Backoff(BATCH_POLL_FIRST_S, self.run.batch_poll_max_s, jitter=False)
                if self.plan.wait:
                    continue
            if not self.plan.wait:
                return  # --detach or `collect`: one look; the key or `collect` takes the rest up
            delay = poll.next()
            left = self.deadline - time.monotonic()
            if delay is None or left <= 0:
                log.warning("%s: provider batches still open at the deadline; `analyze collect` takes them up",
                            name, extra={"event": "batch_deadline", "platform": name})
                return
            # Not lane.sleep: a tripped breaker (the budget spent at submit) halts the lane, and the
            # provider batches already submitted must still be polled at this pace, not in a loop.
            await self.stop.until_requested(min(delay, left))

    # ------------------------------------------------------------------------------ submit

    async def _submit_pending(self, batch_id: uuid.UUID, name: str, client: BatchClient, round_: int) -> None:
        """Every pair of the platform still to do, in provider batches split at the provider's limits."""
        after: uuid.UUID | None = None
        chunk: list[PairWork] = []
        size = 0
        limits = client.limits
        cap = self.settings.platform(name).batch_max_requests
        max_requests = min(limits.max_requests, cap) if cap else limits.max_requests
        room = True
        while room and not self.stop.requested:
            page = await self.db(self.store.pending_pairs, batch_id, name, after=after, limit=self.run.page_size)
            for pair in page:
                n = client.encode(_SIZE_PROBE, pair.prompt_text).size
                if chunk and (len(chunk) >= max_requests or size + n > limits.max_bytes):
                    await self._submit(batch_id, name, client, chunk, round_)
                    chunk, size = [], 0
                if not self._reserve(pair):
                    room = False
                    break
                chunk.append(pair)
                size += n
            if len(page) < self.run.page_size:
                break
            after = page[-1].job_id
        if chunk and not self.stop.requested:
            await self._submit(batch_id, name, client, chunk, round_)

    async def _submit(
        self, batch_id: uuid.UUID, name: str, client: BatchClient, pairs: Sequence[PairWork], round_: int,
        held: Sequence[Member] = (),
    ) -> None:
        """One provider batch: the intent and the claims committed, then the submit, then its id recorded.

        ``pairs`` are claimed for it (first attempt); ``held`` are pairs of an earlier provider batch that
        failed and are already taken back for this one (:meth:`_retry`)."""
        pb = await self.db(self.pbs.create_intent, batch_id, name, client.provider, round_=round_)
        ids = await self.db(self.store.claim_many, [(p, HOLD_S) for p in pairs], owner=owner_of(pb.id))
        members = [(rid, p) for rid, p in zip(ids, pairs, strict=True) if rid is not None]
        for rid, p in zip(ids, pairs, strict=True):
            if rid is None:  # not ours to ask after all (answered meanwhile, or another worker has it)
                self._settle(p, _NOTHING)
        held = [m for m in held if self._reserve(m.pair)]
        if held:
            taken = await self.db(self.pbs.take_back, [m.response_id for m in held], owner=owner_of(pb.id),
                                  lease_s=HOLD_S, count=True)
            if taken:
                members += [(m.response_id, m.pair) for m in held]
            else:
                for m in held:
                    self._settle(m.pair, _NOTHING)
        await self.db(self.pbs.set_request_count, pb.id, len(members))
        if not members:
            await self.db(self.pbs.close, pb.id, ProviderBatchState.ABANDONED, error_message="no pair left to ask")
            return
        encoded: list[Encoded] = [client.encode(str(rid), p.prompt_text) for rid, p in members]
        pp = self.progress.platforms[name]
        try:
            remote = await client.submit(str(pb.id), encoded)
        except ProviderError as e:
            message = scrub(f"{name}: the batch was not accepted: {e.message}", self.secrets)
            log.error("%s", message, extra={"event": "batch_refused", "platform": name})
            await self.db(self.pbs.release, pb.id, message=message[:1000], uncount=True)
            await self.db(self.pbs.close, pb.id, ProviderBatchState.FAILED, error_message=message[:1000])
            for _, p in members:
                self._settle(p, _NOTHING)
            return
        await self.db(self.pbs.record_submitted, pb.id, provider_batch_id=remote.id,
                      provider_state=remote.provider_state, expires_at=remote.expires_at)
        self.submitted += 1
        pp.calls += len(members)
        log.info("%s: submitted provider batch %s (%d requests, round %d)", name, remote.id, len(members), round_,
                 extra={"event": "batch_submitted", "platform": name, "provider_batch": remote.id})

    async def _resolve_intent(self, pb: ProviderBatchRow, client: BatchClient) -> None:
        """A provider batch recorded as being submitted by a process that died: the provider has it or not."""
        members = await self.db(self.pbs.members, pb.id)
        since = pb.created_at - timedelta(minutes=10)  # clock skew between us and the provider
        known = await self.db(self.pbs.known_ids, pb.provider, since - timedelta(days=1))
        try:
            remote = await client.find(str(pb.id), since, [str(m.response_id) for m in members], known)
        except ProviderError as e:  # unknown yet: its pairs stay held, the next run looks again
            log.warning("%s: could not look up an interrupted submit: %s", pb.platform,
                        scrub(e.message, self.secrets),
                        extra={"event": "batch_orphan_unknown", "platform": pb.platform})
            return
        if remote is None:
            for m in members:  # reserved at start as if at the provider: they are not
                self._settle(m.pair, _NOTHING)
            n = await self.db(self.pbs.release, pb.id, message="not submitted: the run stopped first", uncount=True)
            await self.db(self.pbs.close, pb.id, ProviderBatchState.ABANDONED,
                          error_message="not found at the provider: never submitted")
            log.info("%s: a submit interrupted earlier never reached the provider; %d pair(s) go again",
                     pb.platform, n, extra={"event": "batch_orphan_absent", "platform": pb.platform})
            return
        await self.db(self.pbs.record_submitted, pb.id, provider_batch_id=remote.id,
                      provider_state=remote.provider_state, expires_at=remote.expires_at)
        log.warning("%s: found provider batch %s submitted by an interrupted run; waiting for it, not submitting again",
                 pb.platform, remote.id, extra={"event": "batch_orphan_found", "platform": pb.platform})

    # ------------------------------------------------------------------------------ poll and collect

    async def _check(self, pb: ProviderBatchRow, client: BatchClient) -> list[tuple[Member, ProviderError]]:
        """Poll one provider batch; collect it once it ended.  Returns the failed requests to retry."""
        assert pb.provider_batch_id is not None
        try:
            remote = await client.retrieve(pb.provider_batch_id)
        except ProviderError as e:  # a failed poll is not a failed batch: poll again later
            log.warning("%s: polling %s failed: %s", pb.platform, pb.provider_batch_id,
                        scrub(e.message, self.secrets), extra={"event": "batch_poll_failed", "platform": pb.platform})
            return []
        await self.db(self.pbs.record_progress, pb.id, state=remote.state, provider_state=remote.provider_state,
                      completed=remote.completed, failed=remote.failed, ended_at=remote.ended_at,
                      error_message=remote.error)
        if remote.state is ProviderBatchState.IN_PROGRESS:
            if remote.completed + remote.failed != pb.completed_count + pb.failed_count:
                log.info("%s: provider batch %s: %d/%d requests done", pb.platform, remote.id,
                         remote.completed + remote.failed, remote.total or pb.request_count,
                         extra={"event": "batch_progress", "platform": pb.platform})
            return []
        try:
            return await self._collect(pb, remote, client)
        except ProviderError as e:  # the results could not be read now: what was written stays, the rest waits
            log.warning("%s: reading the results of %s failed: %s", pb.platform, remote.id,
                        scrub(e.message, self.secrets),
                        extra={"event": "batch_results_failed", "platform": pb.platform})
            return []

    async def _collect(
        self, pb: ProviderBatchRow, remote: RemoteBatch, client: BatchClient
    ) -> list[tuple[Member, ProviderError]]:
        name = pb.platform
        members = {str(m.response_id): m for m in await self.db(self.pbs.members, pb.id)}
        pp = self.progress.platforms[name]
        lane = self.lanes.get(name)
        max_attempts = lane.settings.max_attempts if lane is not None else 1
        latency_ms = _latency_ms(pb, remote)
        retries: list[tuple[Member, ProviderError]] = []
        writes: list[Any] = []
        if remote.state is not ProviderBatchState.FAILED:
            async for item in client.results(remote):
                m = members.pop(item.custom_id, None)
                if m is None:
                    continue  # not ours, or written already (a collection interrupted earlier)
                if item.result is not None:
                    item.result.latency_ms = latency_ms
                    item.result.metadata["provider_batch"] = remote.id
                    writes.append(self._write(m, item.result))
                    if len(writes) >= _WRITE_GROUP:
                        await asyncio.gather(*writes)
                        writes = []
                elif item.error is not None:
                    self._settle(m.pair, _NOTHING)  # a failed request of a provider batch is not billed
                    await self.recorder.failure(m.pair, m.response_id, item.error, 1,
                                                [f"{item.error.error_class}: {item.error.message}"])
                    pp.error += 1
                    if should_retry(item.error) and m.attempts < max_attempts:
                        retries.append((m, item.error))
                else:
                    members[item.custom_id] = m  # never processed: released below
        if writes:
            await asyncio.gather(*writes)
        final = ProviderBatchState.COLLECTED if remote.state is ProviderBatchState.ENDED else remote.state
        if members:  # expired, cancelled, failed as a whole, or missing from the results
            self.unprocessed += len(members)
            for m in members.values():
                self._settle(m.pair, _NOTHING)
            why = remote.error or remote.provider_state
            message = scrub(f"{name}: provider batch {remote.id} {why}: not answered; the same key resumes it",
                            self.secrets)[:1000]
            await self.db(self.pbs.release, pb.id, message=message, uncount=False,
                          response_ids=[m.response_id for m in members.values()])
            log.warning("%s: provider batch %s %s: %d request(s) not answered; they stay resumable",
                        name, remote.id, why, len(members), extra={"event": "batch_unanswered", "platform": name})
        await self.db(self.pbs.close, pb.id, final)
        # the pairs no longer at the provider, as the live display counts them
        pp.in_flight = max(0, pp.in_flight - pb.request_count)
        return retries

    async def _write(self, m: Member, result: Any) -> None:
        pp = self.progress.platforms[m.pair.platform]
        self._settle(m.pair, result.cost)  # billed whether or not the answer is usable
        rec = self.recorder.success_record(m.pair, m.response_id, result, 1, [])
        try:
            refused = await self.recorder.success(rec)
        except Spooled:
            refused = None  # kept in the spool: written by the next run; the run stops (database gone)
            self.request_stop("database")
        if refused is not None:
            await self.recorder.failure(m.pair, m.response_id, refused, 1, [refused.message])
            pp.error += 1
            return
        pp.success += 1
        pp.tokens += result.total_tokens or 0
        pp.cost += result.cost or 0

    async def _retry(
        self, batch_id: uuid.UUID, name: str, client: BatchClient, lane: Lane,
        retries: Sequence[tuple[Member, ProviderError]], round_: int,
    ) -> None:
        """Failed requests the live policy retries: in a new provider batch, or live near the deadline.

        Only in batch mode: `collect` leaves them to the next run with the key, and a live run that
        collects calls them with the rest of the platform's pairs (:meth:`_platform`)."""
        if not self.plan.submit:
            return
        left = self.deadline - time.monotonic()
        within = self.run.batch_live_retry_within_s
        if self.plan.live and within > 0 and left < within:
            log.info("%s: %d failed request(s) retried live (%.0f s left before the deadline)", name,
                     len(retries), left, extra={"event": "batch_retry_live", "platform": name})
            # The failures are this round's (final for a claim): handed to this runner, which claims
            # them again as its own when it calls.
            taken = await self.db(self.pbs.take_back, [m.response_id for m, _ in retries], owner=self.owner,
                                  lease_s=self.lease_s(lane), count=False)
            if taken:
                await asyncio.gather(*(call_in_slot(lane, m.pair, self._call_pair, self.stop) for m, _ in retries))
            return
        log.info("%s: %d failed request(s) go into a new provider batch", name, len(retries),
                 extra={"event": "batch_retry", "platform": name})
        await self._submit(batch_id, name, client, [], round_, held=[m for m, _ in retries])


def _latency_ms(pb: ProviderBatchRow, remote: RemoteBatch) -> int:
    """An answer's ``execution_time_ms`` in batch mode: the provider batch's time from submit to end."""
    start = pb.submitted_at or pb.created_at
    end = remote.ended_at or datetime.now(UTC)
    return max(0, min(2**31 - 1, int((end - start).total_seconds() * 1000)))
