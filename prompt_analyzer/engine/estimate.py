"""What a run would cost before it spends: calls, tokens, dollars live and in batch mode, and duration.

The expected tokens of a call come from history, the most specific first:

1. the same (prompt, platform) pair in the last :data:`HISTORY_BATCHES` batches: the mean input and
   output tokens and searches of its successful answers;
2. else the platform's answers in those batches: input = the prompt's own tokens (about one per
   :data:`CHARS_PER_TOKEN` characters) + the platform's mean overhead (system text, search results
   fed back as input), output = the platform's mean output;
3. else the stated defaults below.

Cost is the price table's (with the platform's configured overrides) at list prices, and at batch
prices (:func:`~prompt_analyzer.providers.pricing.batch_price`) for the kinds whose provider has a
batch API; search and request fees are the same in both.  Duration is the slowest platform at the
limits in force: per call the longest of 60/rpm, its tokens at tpm, and latency / max_concurrency
(latency from history).  The same per-call figures are what :mod:`.budget` reserves before a call.
Nothing here calls a provider or writes to the database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..config import PlatformSettings, Settings
from ..db import PlanRow, PlatformHistory, Store
from ..providers.pricing import ModelPrice, batch_price, cost_of_calls, price_for
from ..statuses import FINISHED

HISTORY_BATCHES = 7  # a week of daily batches: recent enough to follow a model's change of verbosity
CHARS_PER_TOKEN = 4  # the providers' tokenizers average about four characters a token on English
# Without any history of a platform: the prompt's own tokens in, this many out, one search per call
# when web search is on, this latency.
DEFAULT_OUTPUT_TOKENS = 400
DEFAULT_INPUT_OVERHEAD = 0
DEFAULT_LATENCY_S = 3.0
# Kinds whose provider has a discounted batch API (reference/providers.md); the others run live in mode
# "batch" too, so their batch cost is their live cost.
BATCH_KINDS = frozenset({"openai", "claude", "gemini"})


@dataclass(frozen=True)
class CallProfile:
    """What one call of a platform is expected to use when its pair has no history of its own."""

    answers: int  # history behind these figures; 0: the defaults
    input_overhead: float
    output_tokens: float
    searches: float
    latency_s: float

    @classmethod
    def of(cls, settings: PlatformSettings, history: PlatformHistory | None) -> CallProfile:
        if history is None or history.answers == 0:
            return cls(0, DEFAULT_INPUT_OVERHEAD, DEFAULT_OUTPUT_TOKENS, 1.0 if settings.web_search else 0.0,
                       DEFAULT_LATENCY_S)
        latency = float(history.latency_ms) / 1000 if history.latency_ms is not None else DEFAULT_LATENCY_S
        return cls(history.answers, max(float(history.input_overhead), 0.0), float(history.output_tokens),
                   float(history.searches), latency)

    def input_tokens(self, prompt_chars: int) -> float:
        return prompt_chars / CHARS_PER_TOKEN + self.input_overhead


@dataclass(frozen=True)
class CallEstimator:
    """One platform's expected cost of a call, from its profile and its price (None: price unknown)."""

    profile: CallProfile
    price: ModelPrice | None
    search_context_size: str | None = None

    @classmethod
    def of(cls, settings: PlatformSettings, history: PlatformHistory | None) -> CallEstimator:
        return cls(CallProfile.of(settings, history), price_for(settings), settings.search_context_size)

    def cost(self, prompt: str, *, batch: bool = False) -> Decimal | None:
        """Expected USD of one call asking ``prompt``: live, or through the provider's batch API."""
        if self.price is None:
            return None
        p = self.profile
        price = batch_price(self.price) if batch else self.price
        return cost_of_calls(price, calls=1, input_tokens=Decimal(p.input_tokens(len(prompt))),
                             output_tokens=Decimal(p.output_tokens), searches=Decimal(p.searches),
                             search_context_size=self.search_context_size)


@dataclass
class PlatformEstimate:
    calls: int
    input_tokens: int
    output_tokens: int
    searches: float
    cost_live_usd: float | None  # None: no price known for the platform's model
    cost_batch_usd: float | None
    batch_api: bool
    duration_s: float
    bound_by: str  # the limit that sets the pace: rpm, tpm or concurrency (x latency)
    basis: dict[str, int]  # calls estimated from: their pair's history, the platform's, the defaults

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "tokens": self.tokens, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "searches": round(self.searches, 1),
                "cost_live_usd": self.cost_live_usd, "cost_batch_usd": self.cost_batch_usd,
                "batch_api": self.batch_api, "duration_s": self.duration_s, "bound_by": self.bound_by,
                "basis": self.basis}


@dataclass
class Estimate:
    platforms: dict[str, PlatformEstimate]
    duration_s: float
    key: str | None = None
    batch_id: uuid.UUID | None = None  # the existing batch this run would resume
    note: str | None = None  # e.g. the batch already finished
    spent: dict[str, float] = field(default_factory=dict)  # what the batch already cost, per platform (a resume)
    max_cost_usd: float | None = None
    platform_budgets: dict[str, float] = field(default_factory=dict)
    unpriced: list[str] = field(default_factory=list)  # platforms without a known price

    @property
    def spent_usd(self) -> float:
        return round(sum(self.spent.values()), 6)

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.platforms.values())

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.platforms.values())

    @property
    def cost_live_usd(self) -> float:
        return round(sum(p.cost_live_usd or 0.0 for p in self.platforms.values()), 6)

    @property
    def cost_batch_usd(self) -> float:
        return round(sum(p.cost_batch_usd or 0.0 for p in self.platforms.values()), 6)

    def over_budget(self) -> list[str]:
        """Budgets the live estimate would pass (with what the batch spent before): the run would stop."""
        out = []
        if self.max_cost_usd is not None and self.spent_usd + self.cost_live_usd > self.max_cost_usd:
            out.append("run")
        for name, limit in self.platform_budgets.items():
            est = self.platforms.get(name)
            if est is not None and self.spent.get(name, 0.0) + (est.cost_live_usd or 0.0) > limit:
                out.append(name)
        return out

    def to_json(self) -> dict[str, Any]:
        """The contract's shape (``platforms.{calls, tokens, cost_live_usd, cost_batch_usd}``,
        ``cost_live_usd``, ``cost_batch_usd``, ``duration_s``) and more."""
        return {
            "dry_run": True,
            "key": self.key,
            "batch_id": str(self.batch_id) if self.batch_id else None,
            "note": self.note,
            "platforms": {name: p.to_json() for name, p in self.platforms.items()},
            "calls": self.calls,
            "tokens": self.tokens,
            "cost_live_usd": self.cost_live_usd,
            "cost_batch_usd": self.cost_batch_usd,
            "duration_s": self.duration_s,
            "spent_usd": self.spent_usd,
            "max_cost_usd": self.max_cost_usd,
            "over_budget": self.over_budget(),
            "unpriced": self.unpriced,
        }


def _usd(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)


def estimate_platform(settings: PlatformSettings, plan: PlanRow, history: PlatformHistory | None) -> PlatformEstimate:
    """One platform's figures from its planned calls (with their pairs' history) and its own history."""
    est = CallEstimator.of(settings, history)
    p = est.profile
    unknown = plan.calls - plan.known
    inp = plan.known_input + Decimal(plan.unknown_chars) / CHARS_PER_TOKEN + Decimal(unknown * p.input_overhead)
    out = plan.known_output + Decimal(unknown * p.output_tokens)
    searches = plan.known_searches + Decimal(unknown * p.searches)
    live = batch = None
    batch_api = settings.kind_name in BATCH_KINDS
    if est.price is not None:
        def cost(price: ModelPrice) -> Decimal:
            return cost_of_calls(price, calls=plan.calls, input_tokens=inp, output_tokens=out, searches=searches,
                                 search_context_size=settings.search_context_size)

        live = cost(est.price)
        batch = cost(batch_price(est.price)) if batch_api else live
    duration, bound = _lane_duration(settings, plan.calls, float(inp + out), p.latency_s)
    return PlatformEstimate(
        calls=plan.calls, input_tokens=int(round(inp)), output_tokens=int(round(out)), searches=float(searches),
        cost_live_usd=_usd(live), cost_batch_usd=_usd(batch), batch_api=batch_api, duration_s=duration,
        bound_by=bound,
        basis={"pair": plan.known, "platform": unknown if p.answers else 0, "default": 0 if p.answers else unknown},
    )


def _lane_duration(settings: PlatformSettings, calls: int, tokens: float, latency_s: float) -> tuple[float, str]:
    """Seconds for one platform's calls at its limits: calls go out one per slot of the slowest limit."""
    if calls == 0:
        return 0.0, "none"
    # rpm = "auto": the pace before the provider states its limit (a stated one is usually higher, so the
    # duration is then an upper bound); max_concurrency = "auto" follows rate x latency up to its cap.
    rpm = settings.rpm or settings.auto_start_rpm
    in_flight = settings.max_concurrency or settings.max_concurrency_cap
    per_call = {"rpm": 60.0 / rpm, "concurrency": latency_s / in_flight}
    if settings.tpm:
        per_call["tpm"] = tokens / calls * 60.0 / settings.tpm
    bound = max(per_call, key=lambda k: per_call[k])
    return round((calls - 1) * per_call[bound] + latency_s, 1), bound


def combine(
    settings: Settings, plans: Sequence[PlanRow], history: Mapping[str, PlatformHistory],
    platforms: Sequence[str],
) -> Estimate:
    """Every platform's estimate and the run's duration (its slowest lane; with ``prompt_concurrency`` N,
    also the prompts / N rounds, each waiting for its slowest platform)."""
    by_name = {p.platform: p for p in plans}
    out: dict[str, PlatformEstimate] = {}
    for name in platforms:
        plan = by_name.get(name) or PlanRow(name, 0, 0, Decimal(0), Decimal(0), Decimal(0), 0)
        out[name] = estimate_platform(settings.platform(name), plan, history.get(name))
    duration = max((p.duration_s for p in out.values()), default=0.0)
    n = settings.run.prompt_concurrency
    if n is not None and out:
        prompts = max(p.calls for p in out.values())
        slowest = max(CallProfile.of(settings.platform(k), history.get(k)).latency_s for k in out)
        duration = max(duration, round(math.ceil(prompts / n) * slowest, 1))
    est = Estimate(platforms=out, duration_s=duration)
    est.unpriced = [k for k, p in out.items() if p.cost_live_usd is None and p.calls]
    est.max_cost_usd = float(settings.run.max_cost_usd) if settings.run.max_cost_usd is not None else None
    est.platform_budgets = {k: float(settings.platform(k).max_cost_usd or 0) for k in out
                            if settings.platform(k).max_cost_usd is not None}
    return est


async def history_by_platform(store: Store, platforms: Sequence[str]) -> dict[str, PlatformHistory]:
    rows = await store.platform_history(platforms, history_batches=HISTORY_BATCHES)
    return {r.platform: r for r in rows}


async def estimate_run(
    store: Store, settings: Settings, *, key: str, platforms: Sequence[str],
    project_ids: Sequence[uuid.UUID] = (), limit: int | None = None,
) -> Estimate:
    """What ``analyze run`` with these options would do: a new batch's pairs, or what an existing batch
    of this key still has to call.  Reads only."""
    history = await history_by_platform(store, platforms)
    batch = await store.get_batch_by_key(key)
    note = None
    spent: dict[str, float] = {}
    if batch is None:
        plans = await store.plan_new_batch(platforms=platforms, project_ids=project_ids, limit=limit,
                                           history_batches=HISTORY_BATCHES)
    else:
        if batch.platforms:
            platforms = [p for p in batch.platforms if p in platforms]
        resumable = batch.status not in FINISHED or await store.budget_exhausted_pairs(batch.id) > 0
        if resumable:
            plans = await store.plan_batch(batch.id, platforms=platforms, history_batches=HISTORY_BATCHES)
            note = f"resumes batch {key} ({batch.status})"
        else:
            plans = []
            note = f"batch {key} already finished ({batch.status}): nothing to call"
        spent = {r.platform: float(r.cost) for r in await store.batch_spend(batch.id)}
    est = combine(settings, plans, history, platforms)
    est.key, est.note, est.spent = key, note, spent
    est.batch_id = batch.id if batch is not None else None
    return est
