"""The Anthropic Messages wire format: hand-picked bodies through ``anthropic_messages.parse`` and the client."""

from __future__ import annotations

from typing import Any

import pytest

from prompt_analyzer.providers import MalformedResponse, PermanentError, ProviderResult
from prompt_analyzer.providers.anthropic_messages import parse

from .helpers import load_payload, offline_provider


def read(body: Any) -> ProviderResult:
    return offline_provider("claude").result(body)


def test_claude_search_error_and_truncation() -> None:
    body = load_payload("anthropic-plain.json")
    body["content"].insert(0, {"type": "web_search_tool_result", "tool_use_id": "x",
                               "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}})
    body["stop_reason"] = "max_tokens"
    r = read(body)
    assert r.metadata["search_errors"] == ["max_uses_exceeded"] and r.metadata["truncated"] is True


def test_empty_answers() -> None:
    body = load_payload("anthropic-plain.json")
    body["content"] = []
    with pytest.raises(MalformedResponse):
        read(body)
    body["stop_reason"] = "max_tokens"
    with pytest.raises(PermanentError, match="empty answer"):
        read(body)


def test_refusal_and_error_in_200() -> None:
    body = load_payload("anthropic-plain.json")
    body["stop_reason"] = "refusal"
    with pytest.raises(PermanentError, match="claude: HTTP 200: refusal"):
        read(body)
    with pytest.raises(MalformedResponse, match="error in 200: overloaded_error: busy"):
        parse({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})


def test_text_blocks_join_and_citations_follow_them() -> None:
    body = {"model": "claude-haiku-4-5", "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 4, "server_tool_use": {"web_search_requests": 2},
                      "cache_read_input_tokens": 7},
            "content": [
                {"type": "web_search_tool_result", "content": [{"type": "web_search_result", "url": "https://r.com/"},
                                                               {"url": "https://b.com/", "title": "B"}]},
                {"type": "text", "text": "One. "},
                {"type": "text", "text": "Two.", "citations": [
                    {"type": "web_search_result_location", "url": "https://b.com/", "title": "B", "cited_text": "x"}]},
            ]}
    answer = parse(body)
    assert answer.text == "One. Two."
    assert [(c.url, c.cited, c.position) for c in answer.citations] == [
        ("https://b.com/", True, 1), ("https://r.com/", False, 2)]
    assert (answer.usage.input_tokens, answer.usage.total_tokens, answer.usage.searches) == (3, 7, 2)
    assert answer.metadata == {"stop_reason": "end_turn", "cache_read_input_tokens": 7}
