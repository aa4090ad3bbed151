"""One (job, platform) pair through its steps: claim, reserve and pace, call, record.

    claim ──► reserve tokens, wait for the pacer's slot ──► last-moment check ──► call
      ▲                                                        │ (stop, breaker:    │
      │ retry: counted again, after the policy's wait          │  uncount, end)     ▼
      └──────────────────────── retryable error ◄──────────────┴──────────── answer or error ──► record

The claim (the ``ai_responses`` row set ``processing`` with a lease; made by the lane schedule's pick,
or here for a pair that comes unclaimed) comes before pacing, so database latency never sits between
the pacer's evenly spaced slots and the requests.  Every call is counted in ``attempts`` before it is
made (which also checks the claim is still ours); a call that does not leave after all is uncounted.
Under a cost budget (:mod:`.budget`) each attempt first reserves its expected cost and settles what it
was billed; a budget exhausted stops the platform like its breaker, with ``budget_exhausted``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from decimal import Decimal

from ..backoff import Backoff
from ..config import RunSettings
from ..db import DatabaseUnavailable, PairWork
from ..providers import ProviderError, ProviderResult, QuotaExhausted, RateLimited
from ..redact import scrub
from ..statuses import ErrorClass
from .budget import CostBudget
from .lane import Lane
from .pacing import TokenLimiter
from .progress import PlatformProgress
from .record import Recorder, Spooled
from .retry import quota_exhausted, retry_after, should_retry, wait_seconds
from .stopping import Stop

log = logging.getLogger("prompt_analyzer.engine")


def _total(r: ProviderResult) -> int | None:
    return r.total_tokens


def _input(r: ProviderResult) -> int | None:
    return r.input_tokens


def _output(r: ProviderResult) -> int | None:
    return r.output_tokens


class _NotSent(Exception):
    """The run or the platform stopped while this call waited for its slot: it never left."""


class PairCall:
    def __init__(
        self, lane: Lane, pair: PairWork, *, recorder: Recorder, stop: Stop, run: RunSettings,
        progress: PlatformProgress, lease_s: float, budget: CostBudget | None = None,
    ) -> None:
        self.lane = lane
        self.pair = pair
        self.rec = recorder
        self.stop = stop
        self.run_settings = run
        self.pp = progress
        self.lease_s = lease_s
        self.budget = budget
        self.response_id: uuid.UUID | None = pair.response_id  # claimed when picked (lane schedule)
        self.attempts = 0  # calls made by this run
        self.errors: list[str] = []

    async def run(self) -> None:
        """Take the pair as far as it goes.  Raises only :class:`DatabaseUnavailable` (answers received
        are in the spool) and :class:`asyncio.CancelledError`."""
        backoff = Backoff(self.run_settings.backoff_base_s, self.run_settings.backoff_max_s,
                          attempts=self.lane.settings.max_attempts)
        while True:
            if self.stop.requested or self.lane.breaker.open:
                return  # a claimed pair ends `interrupted` at the finish (or as the breaker says)
            if not await self._claim():
                return  # succeeded meanwhile, or held by a live claim elsewhere
            try:
                result = await self._paid_call()
            except _NotSent:
                return
            except ProviderError as e:
                if not should_retry(e):
                    await self._fail(e)
                    return
                if self.stop.requested:
                    return  # stopped between attempts: ends `interrupted`, resumable
                delay = backoff.next(hint=retry_after(e))
                if delay is None:
                    await self._fail(e)
                    return
                self.pp.retries += 1
                await self.lane.sleep(delay)  # a stop or the breaker opening ends the wait at once
                continue
            except Exception as e:  # a bug or an SDK surprise must not stop the batch
                if isinstance(e, DatabaseUnavailable):
                    raise
                log.exception("unexpected error calling %s", self.lane.name)
                err = ProviderError(f"internal error: {type(e).__name__}: {e}")
                err.error_class = ErrorClass.INTERNAL
                await self._fail(err)
                return
            await self._record(result)
            return

    # -- steps -----------------------------------------------------------------------------------

    async def _claim(self) -> bool:
        """Claim the pair (unless its pick did) and count this attempt; False: not ours to call."""
        if self.response_id is None:
            self.response_id = await self.rec.claim(self.pair, self.lease_s)
            return self.response_id is not None
        return await self.rec.count_attempt(self.response_id, self.lease_s)

    async def _paid_call(self) -> ProviderResult:
        """:meth:`_call` under the cost budget: its expected cost reserved before, what it cost settled after."""
        if self.budget is None:
            return await self._call()
        assert self.response_id is not None
        await self.lane.provider()  # a provider that cannot be made fails the call before it reserves
        held = await self.budget.reserve(self.lane.name, self.pair.prompt_text, self.lane.halted)
        if held is None:
            self._budget_gone()
            await self.rec.unclaim(self.response_id)
            raise _NotSent
        billed: Decimal | None = Decimal(0)
        try:
            result = await self._call()
            billed = result.cost
            return result
        except ProviderError as e:
            # Refused with a status: not billed.  A 200 we could not use, or no answer at all (a timeout
            # after the provider did the work): taken as billed at the reservation.
            billed = Decimal(0) if e.status not in (None, 200) else None
            raise
        finally:
            self.budget.settle(held, billed)

    async def _call(self) -> ProviderResult:
        lane, pp = self.lane, self.pp
        assert self.response_id is not None
        # The client before any slot or reservation: calls waiting for their platform's client to be
        # made must not all leave at once when it is.
        provider = await lane.provider()
        if lane.daily is not None and not await lane.daily.take():
            self._daily_gone()
            await self.rec.unclaim(self.response_id)
            raise _NotSent
        taken = await self._reserve_tokens()
        await lane.pacer.acquire(lane.sleep)
        # The last moment before the request: a stop, an auth error or a quota gone while this call
        # waited for its slot means it must not leave.
        if self.stop.requested or lane.breaker.open:
            await self.rec.unclaim(self.response_id)
            if lane.daily is not None:
                lane.daily.unspent()
            for budget, estimate, _ in taken:
                budget.correct(estimate, 0)  # the tokens taken for it are given back
            raise _NotSent
        self.attempts += 1
        pp.calls += 1
        pp.in_flight += 1
        sent = lane.limits.sent()
        try:
            result = await provider.ask(self.pair.prompt_text)
        except RateLimited as e:
            lane.limits.done(sent, None)
            pp.rate_limited += 1
            self.errors.append(f"{e.error_class}: {e.message}")
            if quota_exhausted(e) or (e.limits is not None and e.limits.rpd):
                self._quota_gone(e)
                raise QuotaExhausted(e.message, retry_after=e.retry_after, status=e.status,
                                     request_id=e.request_id) from None
            lane.limits.rate_limited(e.limits)
            # Rate limiting slows the whole platform (as hinted, or backing off); it never fails it.
            lane.pacer.pause(wait_seconds(e, self.attempts, base=self.run_settings.backoff_base_s,
                                          cap=self.run_settings.backoff_max_s))
            raise
        except ProviderError as e:
            lane.limits.done(sent, None)
            lane.limits.observe(e.limits)
            self.errors.append(f"{e.error_class}: {e.message}")
            raise
        finally:
            pp.in_flight -= 1
        lane.limits.observe(result.limits)
        lane.limits.done(sent, result.latency_ms / 1000.0)
        for budget, estimate, actual in taken:
            billed = actual(result)
            if billed is not None:
                budget.correct(estimate, billed)
        return result

    async def _reserve_tokens(self) -> list[tuple[TokenLimiter, int, Callable[[ProviderResult], int | None]]]:
        """Each token budget in force takes the call's estimate (total; Anthropic: input and output)."""
        lane, prompt = self.lane, self.pair.prompt_text
        limits = lane.limits
        taken: list[tuple[TokenLimiter, int, Callable[[ProviderResult], int | None]]] = []
        for budget, estimate, actual in (
            (limits.budget, lane.estimate_tokens(prompt), _total),
            (limits.input_budget, lane.estimate_input(prompt), _input),
            (limits.output_budget, int(lane.avg_output_tokens), _output),
        ):
            if budget is not None:
                await budget.reserve(estimate, lane.sleep)
                taken.append((budget, estimate, actual))
        return taken

    async def _complete(self, result: ProviderResult) -> ProviderResult:
        """The provider's work on the paid answer (Gemini: its redirects resolved).  A stop that cancels
        it keeps the answer as received, in the spool (the next run writes it); a failure keeps it too."""
        assert self.response_id is not None
        try:
            return await (await self.lane.client.get()).complete(result)
        except asyncio.CancelledError as e:
            self.rec.keep(self.rec.success_record(self.pair, self.response_id, result, self.attempts, self.errors), e)
            raise
        except Exception:
            log.exception("%s: finishing an answer failed; it is recorded as received", self.lane.name)
            return result

    async def _record(self, result: ProviderResult) -> None:
        assert self.response_id is not None
        result = await self._complete(result)
        rec = self.rec.success_record(self.pair, self.response_id, result, self.attempts, self.errors)
        try:
            refused = await self.rec.success(rec)
        except Spooled as e:
            self._count_success(result)
            raise e.cause from None
        if refused is not None:
            log.warning("%s: %s", self.lane.name, refused.message,
                        extra={"event": "unwritable", "platform": self.lane.name, "prompt_id": self.pair.prompt_id})
            await self._fail(refused)
            return
        self._count_success(result)

    def _count_success(self, result: ProviderResult) -> None:
        self.pp.success += 1
        self.pp.tokens += result.total_tokens or 0
        self.pp.cost += result.cost or 0
        self.lane.observed_output(result.output_tokens)
        self.lane.observed_input(result.input_tokens)
        self.lane.breaker.success()

    async def _fail(self, exc: ProviderError) -> None:
        assert self.response_id is not None
        await self.rec.failure(self.pair, self.response_id, exc, self.attempts, self.errors)
        self.pp.error += 1
        lane = self.lane
        if lane.breaker.failure(exc):
            log.warning("%s: circuit open, no more calls this run: %s", lane.name,
                        scrub(lane.breaker.reason or "", self.rec.secrets),
                        extra={"event": "circuit_open", "platform": lane.name, "prompt_id": self.pair.prompt_id,
                               "error_class": exc.error_class})

    def _budget_gone(self) -> None:
        lane = self.lane
        reason = self.budget.exhausted.get(lane.name) if self.budget else None
        if reason and not self.stop.requested and lane.breaker.trip(reason, ErrorClass.BUDGET_EXHAUSTED):
            log.warning("%s: %s; no more calls this run, its pairs are left for a run with a higher budget",
                        lane.name, reason, extra={"event": "budget_exhausted", "platform": lane.name})
    def _daily_gone(self) -> None:
        lane = self.lane
        reason = f"quota exhausted: the day's {lane.settings.rpd:,} requests (rpd) are spent"
        if lane.breaker.trip(reason, ErrorClass.QUOTA_EXHAUSTED):
            log.warning("%s: %s; no more calls this run, its pairs are left for `analyze rerun`", lane.name,
                        reason, extra={"event": "quota_exhausted", "platform": lane.name})

    def _quota_gone(self, exc: RateLimited) -> None:
        lane = self.lane
        reason = f"quota exhausted: the provider asks to wait {exc.retry_after or 0.0:,.0f} s"
        if lane.breaker.trip(reason, ErrorClass.QUOTA_EXHAUSTED):
            log.warning("%s: %s; no more calls this run, its pairs are left for `analyze rerun`", lane.name,
                        reason, extra={"event": "quota_exhausted", "platform": lane.name})
