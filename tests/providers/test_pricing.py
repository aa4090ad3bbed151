"""Price table lookup, config overrides and Decimal cost arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from prompt_analyzer.providers.pricing import (
    ModelPrice,
    compute_cost,
    load_price_table,
    lookup_price,
    parse_price_table,
    price_for,
    reported_cost,
)

from .helpers import make_settings

M = Decimal(1_000_000)


def test_table_has_the_documented_models() -> None:
    table = load_price_table()
    for model in ("gpt-4.1-mini", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash-lite", "gemini-2.5-flash",
                  "sonar-pro"):
        assert model in table
        assert table[model].source and table[model].date
    assert table["gpt-4.1-mini"].input_per_mtok == Decimal("0.40")
    assert table["gpt-4.1-mini"].output_per_mtok == Decimal("1.60")
    assert table["claude-haiku-4-5"].search_fee == Decimal("0.010")
    assert table["gemini-2.5-flash-lite"].search_fee == Decimal("0.035")
    assert dict(table["sonar-pro"].request_fee_by_context) == {
        "low": Decimal("0.006"), "medium": Decimal("0.010"), "high": Decimal("0.014"),
    }
    for p in table.values():  # Decimal end to end: no float crept in
        assert isinstance(p.input_per_mtok, Decimal) and isinstance(p.output_per_mtok, Decimal)


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("GPT-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),  # longest prefix wins
        ("gemini-2.5-flash-001", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("sonar-pro", "sonar-pro"),
    ],
)
def test_lookup_tolerates_dated_versions(model: str, key: str) -> None:
    price = lookup_price(model)
    assert price is not None and price.model == key


@pytest.mark.parametrize("model", ["gpt-4.1", "gpt-4o", "gpt-4.1-minix", "sonar", "claude-opus-4-6", "", None])
def test_lookup_unknown(model: str | None) -> None:
    assert lookup_price(model) is None


def test_compute_cost_exact() -> None:
    price = lookup_price("gpt-4.1-mini")
    cost = compute_cost(price, input_tokens=1000, output_tokens=500, searches=2)
    assert cost == Decimal("0.0004") + Decimal("0.0008") + Decimal("0.020")
    assert compute_cost(price, input_tokens=0, output_tokens=0) == 0
    assert compute_cost(None, input_tokens=1, output_tokens=1) is None
    assert compute_cost(price, input_tokens=None, output_tokens=1) is None


def test_sonar_request_fee_by_context() -> None:
    price = lookup_price("sonar-pro")
    for ctx, fee in (("low", "0.006"), ("medium", "0.010"), ("high", "0.014")):
        assert compute_cost(price, input_tokens=0, output_tokens=0, search_context_size=ctx) == Decimal(fee)
    assert compute_cost(price, input_tokens=0, output_tokens=0, search_context_size="unknown") == 0


def test_config_overrides_replace_table_values() -> None:
    s = make_settings("openai", model="gpt-4.1-mini", input_price_per_mtok=Decimal("0.20"))
    p = price_for(s, "gpt-4.1-mini-2025-04-14")
    assert p is not None
    assert p.input_per_mtok == Decimal("0.20") and p.output_per_mtok == Decimal("1.60")
    assert p.search_fee == Decimal("0.010")
    s2 = make_settings("perplexity", model="sonar-pro", request_fee=Decimal("0.001"))
    p2 = price_for(s2)
    assert p2 is not None
    assert compute_cost(p2, input_tokens=0, output_tokens=0, search_context_size="high") == Decimal("0.001")


def test_unknown_model_needs_both_token_prices() -> None:
    assert price_for(make_settings("openai", model="o9-ultra")) is None
    assert price_for(make_settings("openai", model="o9-ultra", input_price_per_mtok=Decimal(1))) is None
    p = price_for(make_settings("openai", model="o9-ultra", input_price_per_mtok=Decimal(1),
                                output_price_per_mtok=Decimal(2), request_fee=Decimal("0.5")))
    assert p == ModelPrice(model="o9-ultra", input_per_mtok=Decimal(1), output_per_mtok=Decimal(2),
                           request_fee=Decimal("0.5"), source="config")
    assert compute_cost(p, input_tokens=1_000_000, output_tokens=1_000_000) == Decimal("3.5")


def test_reported_model_wins_over_configured() -> None:
    p = price_for(make_settings("gemini", model="gemini-2.5-flash"), "gemini-2.5-flash-lite")
    assert p is not None and p.model == "gemini-2.5-flash-lite"
    # Unknown reported model: fall back to the configured one.
    p = price_for(make_settings("openai", model="gpt-4o-mini"), "gpt-5.2-2025-12-11")
    assert p is not None and p.model == "gpt-4o-mini"


def test_parse_price_table_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        parse_price_table('[models.x]\ninput_per_mtok = -1\noutput_per_mtok = 1\n')
    with pytest.raises(ValueError, match="number"):
        parse_price_table('[models.x]\ninput_per_mtok = "a"\noutput_per_mtok = 1\n')
    t = parse_price_table('[models.X]\ninput_per_mtok = 0.1\noutput_per_mtok = 0.2\n')
    assert t["x"].input_per_mtok == Decimal("0.1")


def test_reported_cost_reads_perplexitys_own_figure() -> None:
    assert reported_cost({"input_tokens_cost": 0.1, "total_cost": 0.007842}) == Decimal("0.007842")
    assert reported_cost(0.5) == Decimal("0.5") and reported_cost("0.25") == Decimal("0.25")
    for junk in (None, True, "n/a", float("nan"), {"total_cost": None}, [1]):
        assert reported_cost(junk) is None


def test_batch_prices_are_half_the_token_prices_and_keep_the_fees() -> None:
    table = load_price_table()
    for model in ("gpt-4.1-mini", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash-lite", "gemini-2.5-flash"):
        p = table[model]
        assert p.batch_input_per_mtok == p.input_per_mtok / 2
        assert p.batch_output_per_mtok == p.output_per_mtok / 2
    assert not table["sonar-pro"].has_batch  # Perplexity has no batch API
    live = price_for(make_settings("claude", model="claude-haiku-4-5"))
    batch = price_for(make_settings("claude", model="claude-haiku-4-5"), batch=True)
    assert live is not None and batch is not None
    assert compute_cost(live, input_tokens=1_000_000, output_tokens=1_000_000) == Decimal("6.00")
    assert compute_cost(batch, input_tokens=1_000_000, output_tokens=1_000_000) == Decimal("3.00")
    # the search fee is billed in full in batch mode
    assert compute_cost(batch, input_tokens=0, output_tokens=0, searches=3) == Decimal("0.030")
    assert price_for(make_settings("perplexity", model="sonar-pro"), batch=True) is None


def test_batch_price_of_configured_token_prices_is_discounted() -> None:
    s = make_settings("openai", model="o9-ultra", input_price_per_mtok=Decimal(1), output_price_per_mtok=Decimal(3))
    p = price_for(s, batch=True)
    assert p is not None
    assert (p.input_per_mtok, p.output_per_mtok) == (Decimal("0.5"), Decimal("1.5"))
    p2 = price_for(make_settings("openai", model="gpt-4.1-mini", output_price_per_mtok=Decimal(2)), batch=True)
    assert p2 is not None and (p2.input_per_mtok, p2.output_per_mtok) == (Decimal("0.20"), Decimal("1.0"))
