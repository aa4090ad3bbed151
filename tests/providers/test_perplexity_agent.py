"""Perplexity's Agent API wire format: hand-picked bodies through ``perplexity_agent.parse`` and the client."""

from __future__ import annotations

from typing import Any

import pytest

from prompt_analyzer.providers import MalformedResponse, PermanentError, ProviderResult
from prompt_analyzer.providers.perplexity_agent import parse

from .helpers import load_payload, offline_provider


def read(body: Any) -> ProviderResult:
    return offline_provider("perplexity", api="agent").result(body)


def test_agent_failed_status() -> None:
    body = load_payload("perplexity-agent-responses.json")
    body["status"] = "failed"
    body["error"] = {"code": "internal_error", "message": "upstream model failed"}
    with pytest.raises(MalformedResponse, match="upstream model failed"):
        read(body)
    body["error"] = {"code": "invalid_request", "message": "unsupported preset"}
    with pytest.raises(PermanentError, match="unsupported preset"):
        read(body)


def test_failures_are_worded_for_perplexity() -> None:
    body = load_payload("perplexity-agent-responses.json")
    body["status"] = "incomplete"
    body["output"] = body["output"][:1]  # the search results, no message
    with pytest.raises(PermanentError) as info:
        read(body)
    assert info.value.message.startswith("perplexity: HTTP 200: empty answer: run incomplete")
    assert info.value.request_id == body["id"]


def test_markers_annotations_and_search_count() -> None:
    body = {"id": "r", "status": "completed", "model": "m",
            "output": [
                {"type": "search_results", "results": [{"id": 7, "url": "https://seven.com/"},
                                                       {"url": "https://two.com/"}]},
                {"type": "message", "content": [{"type": "output_text", "text": "A [2]. B [7].", "annotations": [
                    {"type": "url_citation", "url": "https://ann.com/"}]}]},
            ],
            "usage": {"input_tokens": 1, "output_tokens": 2, "cost": {"total_cost": 0.5},
                      "tool_calls_details": {"search_web": {"invocation": 3}}}}
    answer = parse(body)
    # the annotation (no start_index: start of its part) first, then the markers in text order
    assert [(c.url, c.cited) for c in answer.citations] == [
        ("https://ann.com/", True), ("https://two.com/", True), ("https://seven.com/", True)]
    assert answer.usage.searches == 3 and answer.metadata["provider_cost"] == "0.5"
    del body["usage"]["tool_calls_details"]
    assert parse(body).usage.searches == 1  # one search_results item
    with pytest.raises(MalformedResponse, match="no output list"):
        parse({"status": "completed"})
