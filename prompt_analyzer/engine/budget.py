"""``max_cost_usd``: a budget per batch (``[run]``) and per platform, that holds with many calls in flight.

Every call reserves its expected cost (:class:`~.estimate.CallEstimator`, times :data:`RESERVE_MARGIN`)
before it is sent and settles with the billed cost once answered (an error is billed nothing, a 200
we could not use is taken as billed at the reservation; an answer without a cost likewise).  A call
starts only if, for every budget it falls under, ``spent + reserved + its reservation <= limit``.
When it does not fit while other calls hold reservations, it waits for them to settle (they may cost
less than reserved) and checks again; when it does not fit with nothing reserved, the budget is
exhausted for that platform: the caller stops the platform (its breaker, class ``budget_exhausted``)
and its remaining pairs stay resumable under a higher budget.

Batch mode reserves at the batch price when it puts a request into a provider batch (:meth:`CostBudget.take`,
never waiting: reservations settle only when the provider batch is collected) and settles each request
as its result is written; requests an earlier run left at the provider are reserved whatever the limit
(they will be billed).  A request that does not fit is not submitted.

``spent`` starts at what the batch's answers already cost in earlier runs, so a resume or a rerun
honours the same budget.  Overshoot: billed <= limit + the sum, over the calls in flight when it was
reached, of what each cost beyond its reservation (at most ``max_concurrency`` calls per platform).

All state changes happen between awaits on the run's one event loop: checking and taking a
reservation is one step no other task can interleave with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal

from ..config import ConfigError, Settings
from ..db import PlatformHistory
from .estimate import CallEstimator

RESERVE_MARGIN = Decimal("1.2")  # a call reserves 20% over its expected cost: most calls fit their reservation
_NANO = Decimal("1e-9")
RECHECK_S = 1.0  # a waiting call checks again at least this often (a wake-up lost is only a delay)


@dataclass
class Limit:
    """One budget: the run's or a platform's."""

    name: str  # "run" or the platform's name
    limit: Decimal
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    parked: Decimal = Decimal(0)  # the part of ``reserved`` held by provider batches (settles at collection)

    def fits(self, amount: Decimal) -> bool:
        return self.spent + self.reserved + amount <= self.limit

    def describe(self) -> str:
        where = "[run] max_cost_usd" if self.name == "run" else f"platforms.{self.name}.max_cost_usd"
        return f"{where} = {self.limit:f} reached (spent {self.spent:.4f} USD)"


@dataclass
class Held:
    """A call's reservation, under each budget it falls under."""

    amount: Decimal
    limits: Sequence[Limit] = field(default_factory=tuple)
    open: bool = True
    parked: bool = False  # batch mode's: settles when its provider batch is collected, not soon


class CostBudget:
    def __init__(self, limits: Mapping[str, Sequence[Limit]], estimators: Mapping[str, CallEstimator]) -> None:
        self._limits = limits  # per platform: the run's limit and its own (either may be absent)
        self._estimators = estimators
        self._changed = asyncio.Event()
        self.exhausted: dict[str, str] = {}  # platform -> why it may not start another call

    @staticmethod
    def applies(settings: Settings, platforms: Sequence[str]) -> bool:
        """Whether any ``max_cost_usd`` limits a run of ``platforms``."""
        return settings.run.max_cost_usd is not None or any(
            settings.platform(p).max_cost_usd is not None for p in platforms)

    @classmethod
    def build(
        cls, settings: Settings, platforms: Sequence[str], spent: Mapping[str, Decimal],
        history: Mapping[str, PlatformHistory],
    ) -> CostBudget | None:
        """The run's budget (None when no ``max_cost_usd`` applies to any of ``platforms``).

        ``spent``: the batch's cost so far per platform, every platform of the batch (the run's limit
        counts them all, whichever platforms this run calls)."""
        if not cls.applies(settings, platforms):
            return None
        run_limit = settings.run.max_cost_usd
        shared = Limit("run", run_limit, spent=sum(spent.values(), Decimal(0))) if run_limit is not None else None
        limits: dict[str, list[Limit]] = {}
        estimators: dict[str, CallEstimator] = {}
        for name in platforms:
            ps = settings.platform(name)
            own = (Limit(name, ps.max_cost_usd, spent=spent.get(name, Decimal(0)))
                   if ps.max_cost_usd is not None else None)
            limits[name] = [x for x in (shared, own) if x is not None]
            estimators[name] = CallEstimator.of(ps, history.get(name))
            if limits[name] and estimators[name].price is None:
                raise ConfigError(f"platforms.{name}: max_cost_usd needs the price of model {ps.model!r}: set "
                                  "input_price_per_mtok and output_price_per_mtok")
        return cls(limits, estimators)

    def reservation(self, platform: str, prompt: str, *, batch: bool = False) -> Decimal:
        """The call's expected cost x the margin, in whole nano-dollars: sums of such amounts are exact, so
        ``reserved`` is exactly zero again once every call has settled (28-digit Decimal sums of the raw
        estimates are rounded and would leave a residue that reads as a call in flight).  ``batch``: at
        the provider's batch price."""
        cost = self._estimators[platform].cost(prompt, batch=batch) if platform in self._estimators else None
        return ((cost or Decimal(0)) * RESERVE_MARGIN).quantize(_NANO, rounding=ROUND_UP)

    def take(self, platform: str, prompt: str, *, batch: bool = False, force: bool = False) -> Held | None:
        """Reserve without waiting: batch mode's submit, whose reservations settle only when the provider
        batch is collected, so waiting for room would not free any.  None: the budget is exhausted for
        this platform (:attr:`exhausted` says why).  ``force``: reserve even past the limit (requests
        already at the provider, from an earlier run: they will be billed whatever this run decides)."""
        limits = self._limits.get(platform, ())
        amount = self.reservation(platform, prompt, batch=batch)
        if not force:
            if platform in self.exhausted:
                return None
            blocking = [x for x in limits if not x.fits(amount)]
            if blocking:
                self.exhausted[platform] = blocking[0].describe()
                return None
        for x in limits:
            x.reserved += amount
            x.parked += amount
        return Held(amount, limits, parked=True)

    async def reserve(self, platform: str, prompt: str, halted: asyncio.Event) -> Held | None:
        """Reserve the call's expected cost, waiting while calls in flight may free room.  None: the
        budget is exhausted for this platform (:attr:`exhausted` says why), or ``halted`` was set while
        waiting (the caller tells which by its own state)."""
        limits = self._limits.get(platform, ())
        amount = self.reservation(platform, prompt)
        while True:
            if platform in self.exhausted:
                return None
            blocking = [x for x in limits if not x.fits(amount)]
            if not blocking:
                for x in limits:
                    x.reserved += amount
                return Held(amount, limits)
            # Waiting helps only if calls in flight will settle soon; provider batches settle when
            # collected (hours), so their reservations do not count as room to come.
            if all(x.reserved - x.parked <= 0 for x in blocking):
                self.exhausted[platform] = blocking[0].describe()
                return None
            if not await self._wait(halted):
                return None

    async def _wait(self, halted: asyncio.Event) -> bool:
        """Until a reservation settles (True) or ``halted`` is set (False); bounded by RECHECK_S."""
        changed = asyncio.ensure_future(self._changed.wait())
        stop = asyncio.ensure_future(halted.wait())
        try:
            await asyncio.wait((changed, stop), timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (changed, stop):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        return not halted.is_set()

    def settle(self, held: Held | None, billed: Decimal | None) -> None:
        """The call is over: its reservation becomes what it cost (``billed``; None: unknown, the
        reservation is taken as spent)."""
        if held is None or not held.open:
            return
        held.open = False
        cost = held.amount if billed is None else billed
        for x in held.limits:
            x.reserved -= held.amount
            if held.parked:
                x.parked -= held.amount
            x.spent += cost
        # Wake every waiter: a new event for the next round, so none misses this one.
        self._changed.set()
        self._changed = asyncio.Event()

    def release(self, held: Held | None) -> None:
        """The call never left, or failed without an answer: nothing billed."""
        self.settle(held, Decimal(0))

    def spent(self, name: str = "run") -> Decimal | None:
        for limits in self._limits.values():
            for x in limits:
                if x.name == name:
                    return x.spent
        return None
