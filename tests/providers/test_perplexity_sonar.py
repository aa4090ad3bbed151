"""Perplexity Sonar chat completions: hand-picked bodies through ``perplexity_sonar.parse`` and the client."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from prompt_analyzer.providers import MalformedResponse, ProviderResult
from prompt_analyzer.providers.perplexity_sonar import parse

from .helpers import load_payload, offline_provider


def read(body: Any, **changes: Any) -> ProviderResult:
    return offline_provider("perplexity", **changes).result(body)


def test_sonar_markers_and_fallback_to_search_results() -> None:
    body = load_payload("perplexity-sonar-docs-example.json")
    del body["citations"]
    body["choices"][0]["message"]["content"] = "Answer [4][9] and [2, 4]."
    r = read(body)
    assert [(c.domain, c.cited) for c in r.citations] == [
        ("space.com", True), ("esa.int", True), ("en.wikipedia.org", False), ("science.nasa.gov", False)
    ]


def test_context_size_from_the_body_else_the_request() -> None:
    body = load_payload("perplexity-sonar-docs-example.json")
    body["usage"].pop("search_context_size", None)
    r = read(body, search_context_size="high")
    assert r.metadata["search_context_size"] == "high"
    assert r.cost == 14 * Decimal(3) / 1_000_000 + 120 * Decimal(15) / 1_000_000 + Decimal("0.014")
    body["usage"]["search_context_size"] = "low"
    assert parse(body, search_context_size="high").usage.search_context_size == "low"


def test_truncation_and_errors() -> None:
    body = load_payload("perplexity-sonar-docs-example.json")
    body["choices"][0]["finish_reason"] = "length"
    assert read(body).metadata["truncated"] is True
    with pytest.raises(MalformedResponse, match="error in 200: bad"):
        parse({"error": {"message": "bad"}})
    with pytest.raises(MalformedResponse, match="content is not a string"):
        parse({"choices": [{"message": {"content": None}}]})
