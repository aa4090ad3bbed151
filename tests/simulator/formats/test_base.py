"""The WireFormat contract (formats/base.py), checked over every served format, and the shared helpers."""

from __future__ import annotations

import json

import pytest

from prompt_analyzer.simulator import SIM_PLATFORMS
from prompt_analyzer.simulator.content import make_answer
from prompt_analyzer.simulator.formats import FORMATS, BadRequest, Quota, WireFormat
from prompt_analyzer.simulator.formats.base import bearer_key, marked_text

QUOTA = Quota(rpm=240.0, tpm=10_000, requests_remaining=0, requests_reset_s=0.2, tokens_remaining=0, tokens_reset_s=1.5)

# A minimal valid body per format (Gemini names its model in the path).
BODIES = {
    "openai_responses": {"model": "gpt-4.1-mini", "input": "tea", "tools": [{"type": "web_search"}]},
    "anthropic": {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "tea"}],
                  "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
    "gemini": {"contents": [{"parts": [{"text": "tea"}]}], "tools": [{"googleSearch": {}}]},
    "perplexity_sonar": {"model": "sonar-pro", "messages": [{"role": "user", "content": "tea"}]},
    "perplexity_agent": {"model": "openai/gpt-5-mini", "input": "tea", "tools": [{"type": "web_search"}]},
    "openai_chat": {"model": "grok-4-fast", "messages": [{"role": "user", "content": "tea"}], "web_search_options": {}},
}


def test_every_format_has_a_test_body() -> None:
    assert set(FORMATS) <= set(BODIES)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_contract(name: str) -> None:
    fmt: WireFormat = FORMATS[name]
    assert fmt.platform in SIM_PLATFORMS and fmt.request_id_header
    call = fmt.parse(BODIES[name], "gemini-2.5-flash" if name == "gemini" else None)
    assert call.prompt == "tea" and call.search and call.model
    ans = make_answer(call.prompt, fmt.platform, 0)
    for body in (fmt.success(call, ans, "req_1"), fmt.failed(call, "req_1"), fmt.invalid_key("k-123", "req_1"),
                 fmt.server_error(500, "req_1"), fmt.server_error(503, "req_1"),
                 fmt.error(400, "bad", "req_1", param="model")):
        json.dumps(body)
    assert "k-123" in json.dumps(fmt.invalid_key("k-123", "req_1"))
    assert "error" in fmt.error(401, fmt.missing_key_message(), "req_1")
    for what in ("requests", "tokens", "injected"):
        body, headers = fmt.rate_limited(0.25, call.model, what, QUOTA, "req_1")
        assert "error" in body and all(isinstance(v, str) for v in headers.values())
    assert all(isinstance(v, str) for v in {**fmt.quota_headers(QUOTA), **fmt.extra_headers()}.values())


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_parse_rejects_an_empty_body(name: str) -> None:
    with pytest.raises(BadRequest):
        FORMATS[name].parse({}, "gemini-2.5-flash" if name == "gemini" else None)


def test_marked_text_spans_cover_the_marks() -> None:
    ans = make_answer("best espresso machines", "openai", 0)
    text, spans = marked_text(ans, lambda i: f" <{i}>")
    assert spans and [s.source for s in spans] == list(ans.cited)
    for s in spans:
        assert text[s.start : s.end] == f"<{s.source}>"  # the leading space is outside the span
    plain, none = marked_text(ans, lambda i: "")
    assert plain.startswith(ans.sentences[0].text) and all(s.start == s.end for s in none)


def test_bearer_key() -> None:
    assert bearer_key({"Authorization": "Bearer  sk-1 "}) == "sk-1"
    assert bearer_key({"Authorization": "bearer sk-2"}) == "sk-2"
    assert bearer_key({"Authorization": "Basic abc"}) is None and bearer_key({}) is None
    assert bearer_key({"Authorization": "Bearer "}) is None
