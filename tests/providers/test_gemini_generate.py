"""The Gemini generateContent wire format: hand-picked bodies through ``gemini_generate.parse`` and the client."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from prompt_analyzer.providers import MalformedResponse, PermanentError, ProviderResult
from prompt_analyzer.providers.gemini_generate import parse

from .helpers import load_payload, offline_provider


def read(body: Any, **changes: Any) -> ProviderResult:
    return offline_provider("gemini", **changes).result(body)


def test_gemini_grounded_fee_and_byte_offsets() -> None:
    body = load_payload("gemini-grounding.json")
    body["modelVersion"] = "gemini-2.5-flash"
    r = read(body, model="gemini-2.5-flash")
    m = Decimal(1_000_000)
    assert r.cost == 136 * Decimal("0.30") / m + 414 * Decimal("2.50") / m + Decimal("0.035")
    # Supports are ordered by byte offset, not by chunk index.
    body = {
        "candidates": [{
            "content": {"parts": [{"text": "é" * 10 + " a. b."}]},
            "groundingMetadata": {
                "groundingChunks": [{"web": {"uri": "https://r/0", "title": "zero.com"}},
                                    {"web": {"uri": "https://r/1", "title": "one.com"}},
                                    {"web": {"uri": "https://r/2", "title": "two.com"}}],
                "groundingSupports": [{"segment": {"startIndex": 23, "endIndex": 25}, "groundingChunkIndices": [0]},
                                      {"segment": {"endIndex": 22}, "groundingChunkIndices": [1, 7]}],
                "webSearchQueries": ["q"],
            },
        }],
        "usageMetadata": {"promptTokenCount": 5},
    }
    r = read(body)
    assert [(c.domain, c.position, c.cited) for c in r.citations] == [
        ("one.com", 1, True), ("zero.com", 2, True), ("two.com", 3, False)
    ]
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (5, 0, 5)  # proto3 drops zeros


def test_gemini_blocked_and_refused() -> None:
    with pytest.raises(PermanentError, match="blocked"):
        read({"promptFeedback": {"blockReason": "SAFETY"}})
    with pytest.raises(PermanentError, match="refusal"):
        read({"candidates": [{"finishReason": "SAFETY"}]})
    with pytest.raises(MalformedResponse):
        read({"candidates": []})


def test_empty_answer_when_thinking_took_the_budget() -> None:
    body = load_payload("gemini-plain.json")
    body["candidates"][0]["content"] = {"role": "model"}
    body["candidates"][0]["finishReason"] = "MAX_TOKENS"
    with pytest.raises(PermanentError, match="empty answer"):
        read(body)


def test_snake_case_sdk_dumps_and_thoughts() -> None:
    body = {"response_id": "r1", "model_version": "gemini-2.5-flash",
            "candidates": [{"finish_reason": "STOP", "content": {"parts": [
                {"text": "thinking...", "thought": True}, {"text": "Answer."}]},
                "grounding_metadata": {"grounding_chunks": [{"web": {"uri": "https://x.com/r", "title": "Some page"}}],
                                       "web_search_queries": ["q"]}}],
            "usage_metadata": {"prompt_token_count": 2, "thoughts_token_count": 3}}
    answer = parse(body)
    assert answer.text == "Answer." and answer.request_id == "r1" and answer.model_version == "gemini-2.5-flash"
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.searches) == (2, 3, 1)
    (c,) = answer.citations
    assert (c.url, c.domain, c.cited) == ("https://x.com/r", "x.com", False)  # title is no domain: the URL's
    assert answer.metadata == {"finish_reason": "STOP", "search_queries": ["q"], "grounded": True}
    with pytest.raises(MalformedResponse, match="error in 200: UNAVAILABLE: busy"):
        parse({"error": {"status": "UNAVAILABLE", "message": "busy"}})
