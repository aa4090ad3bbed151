"""Price table and cost arithmetic, all in :class:`~decimal.Decimal` (money never goes through float).

The table ships as ``prices.toml`` beside this module; a platform's config may override the
token prices and the request fee (for negotiated rates or a model the table does not know yet).

Batch prices (the providers' batch APIs) are per model in the table; a model without them has no
discounted batch API.  Only the token prices are discounted: request and search fees are billed in
full in batch mode, as every provider's pricing page says.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from ..config import PlatformSettings

__all__ = [
    "BATCH_DISCOUNT",
    "ModelPrice",
    "batch_price",
    "compute_cost",
    "cost_of_calls",
    "load_price_table",
    "lookup_price",
    "price_for",
    "reported_cost",
    "usd_amount",
]

_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)
# The batch APIs' token discount (OpenAI Batch, Anthropic Message Batches, Gemini Batch Mode all bill
# 50% of list).  Applied only to token prices that come from config, where the table cannot say.
BATCH_DISCOUNT = Decimal("0.5")


@dataclass(frozen=True)
class ModelPrice:
    model: str  # the table key (or the configured model when prices come from config alone)
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    request_fee: Decimal = _ZERO  # per request
    request_fee_by_context: Mapping[str, Decimal] = field(default_factory=dict)  # perplexity sonar
    search_fee: Decimal = _ZERO  # per web search / grounded request
    batch_input_per_mtok: Decimal | None = None  # None: no discounted batch API for this model
    batch_output_per_mtok: Decimal | None = None
    source: str = ""
    date: str = ""

    def fee_for_request(self, search_context_size: str | None = None) -> Decimal:
        """Flat fee per request; Perplexity's depends on the search context size asked for."""
        if search_context_size and search_context_size in self.request_fee_by_context:
            return self.request_fee_by_context[search_context_size]
        return self.request_fee

    @property
    def has_batch(self) -> bool:
        return self.batch_input_per_mtok is not None and self.batch_output_per_mtok is not None

    def as_batch_if(self, batch: bool) -> ModelPrice | None:
        """:meth:`as_batch` when ``batch``, else self; ``None`` when batch is asked and there is none."""
        if not batch:
            return self
        return self.as_batch() if self.has_batch else None

    def as_batch(self) -> ModelPrice:
        """The same price at the batch API's token rates (fees unchanged: they are not discounted)."""
        if self.batch_input_per_mtok is None or self.batch_output_per_mtok is None:
            raise ValueError(f"{self.model}: no batch price")
        return replace(self, input_per_mtok=self.batch_input_per_mtok, output_per_mtok=self.batch_output_per_mtok)


def usd_amount(value: Any) -> Decimal:
    """A price or an amount of USD: a finite number >= 0 (int, float, str or Decimal, not a bool);
    ValueError saying what is wrong ("must be a number" / "must be a non-negative number") otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a number")
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("must be a number") from None
    if not d.is_finite() or d < 0:
        raise ValueError("must be a non-negative number")
    return d


def _dec(value: Any, where: str) -> Decimal:
    try:
        return usd_amount(value)
    except ValueError as e:
        raise ValueError(f"prices.toml: {where} {e}, got {value!r}") from None


def _opt_dec(entry: Mapping[str, Any], key: str, name: str) -> Decimal | None:
    return _dec(entry[key], f"{name}.{key}") if key in entry else None


def parse_price_table(text: str) -> dict[str, ModelPrice]:
    """Parse a TOML price table; floats are read as Decimal so 0.40 stays exactly 0.40."""
    raw = tomllib.loads(text, parse_float=Decimal)
    out: dict[str, ModelPrice] = {}
    for name, entry in (raw.get("models") or {}).items():
        key = str(name).lower()
        by_ctx = {
            str(k): _dec(v, f"{name}.request_fee_by_context.{k}")
            for k, v in (entry.get("request_fee_by_context") or {}).items()
        }
        out[key] = ModelPrice(
            model=key,
            input_per_mtok=_dec(entry["input_per_mtok"], f"{name}.input_per_mtok"),
            output_per_mtok=_dec(entry["output_per_mtok"], f"{name}.output_per_mtok"),
            request_fee=_dec(entry.get("request_fee", 0), f"{name}.request_fee"),
            request_fee_by_context=by_ctx,
            search_fee=_dec(entry.get("search_fee", 0), f"{name}.search_fee"),
            batch_input_per_mtok=_opt_dec(entry, "batch_input_per_mtok", name),
            batch_output_per_mtok=_opt_dec(entry, "batch_output_per_mtok", name),
            source=str(entry.get("source", "")),
            date=str(entry.get("date", "")),
        )
    return out


@lru_cache(maxsize=1)
def load_price_table() -> Mapping[str, ModelPrice]:
    """The packaged table (read once per process)."""
    text = resources.files(__package__).joinpath("prices.toml").read_text(encoding="utf-8")
    return parse_price_table(text)


def _clean_model(model: str) -> str:
    m = model.strip().lower()
    if m.startswith("models/"):  # Gemini reports "models/gemini-2.5-flash" in some places
        m = m[len("models/") :]
    return m


def lookup_price(model: str | None, table: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """Longest table key that equals ``model`` or prefixes it at a ``-`` boundary (dated versions)."""
    if not model or not isinstance(model, str):
        return None
    table = load_price_table() if table is None else table
    m = _clean_model(model)
    best: ModelPrice | None = None
    for key, price in table.items():
        if (m == key or m.startswith(key + "-")) and (best is None or len(key) > len(best.model)):
            best = price
    return best


def price_for(
    settings: PlatformSettings,
    model_version: str | None = None,
    table: Mapping[str, ModelPrice] | None = None,
    *,
    batch: bool = False,
) -> ModelPrice | None:
    """The price for one answer: table entry for the reported (else configured) model, with overrides.

    Config overrides replace single values.  Without a table entry both token prices must be
    configured, else the price is unknown (``None``): a half-known price would understate cost.
    ``batch=True``: the batch API's price: the table's batch token prices, or a configured token
    price times :data:`BATCH_DISCOUNT`; ``None`` when the model has no batch price at all.
    """
    base = lookup_price(model_version, table) or lookup_price(settings.model, table)
    inp, out, fee = settings.input_price_per_mtok, settings.output_price_per_mtok, settings.request_fee
    if base is None:
        if inp is None or out is None:
            return None
        if batch:
            inp, out = inp * BATCH_DISCOUNT, out * BATCH_DISCOUNT
        return ModelPrice(
            model=settings.model, input_per_mtok=inp, output_per_mtok=out, request_fee=fee or _ZERO,
            source="config",
        )
    changes: dict[str, Any] = {}
    if inp is not None:
        changes["input_per_mtok"] = inp
        changes["batch_input_per_mtok"] = inp * BATCH_DISCOUNT if base.has_batch else None
    if out is not None:
        changes["output_per_mtok"] = out
        changes["batch_output_per_mtok"] = out * BATCH_DISCOUNT if base.has_batch else None
    if fee is not None:
        changes["request_fee"] = fee
        changes["request_fee_by_context"] = {}  # a configured fee replaces the per-context fees
    price = replace(base, **changes) if changes else base
    return price.as_batch_if(batch)


def batch_price(price: ModelPrice) -> ModelPrice:
    """The price of the same call through the provider's batch API: the table's batch token prices where
    it gives them, else the list prices at :data:`BATCH_DISCOUNT`; fees unchanged."""
    inp = price.batch_input_per_mtok
    out = price.batch_output_per_mtok
    return replace(
        price,
        input_per_mtok=price.input_per_mtok * BATCH_DISCOUNT if inp is None else inp,
        output_per_mtok=price.output_per_mtok * BATCH_DISCOUNT if out is None else out,
    )


def compute_cost(
    price: ModelPrice | None,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    searches: int = 0,
    search_context_size: str | None = None,
) -> Decimal | None:
    """USD: tokens x prices + request fee + searches x search fee; ``None`` if price or usage is unknown."""
    if price is None or input_tokens is None or output_tokens is None:
        return None
    tokens = (Decimal(input_tokens) * price.input_per_mtok + Decimal(output_tokens) * price.output_per_mtok) / _MTOK
    return tokens + price.fee_for_request(search_context_size) + Decimal(max(searches, 0)) * price.search_fee


def cost_of_calls(
    price: ModelPrice,
    *,
    calls: int,
    input_tokens: Decimal,
    output_tokens: Decimal,
    searches: Decimal,
    search_context_size: str | None = None,
) -> Decimal:
    """USD for ``calls`` calls with these token and search totals (fractional: an estimate's means):
    :func:`compute_cost` summed over the calls."""
    tokens = (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / _MTOK
    return tokens + calls * price.fee_for_request(search_context_size) + searches * price.search_fee


def reported_cost(value: Any) -> Decimal | None:
    """The provider's own figure for a call (Perplexity's ``usage.cost``: a number or ``{total_cost}``).

    Kept beside ours in the metadata, never used as ours: it is what the provider says it billed.
    """
    if isinstance(value, dict):
        value = value.get("total_cost")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return None
    return d if d.is_finite() else None
