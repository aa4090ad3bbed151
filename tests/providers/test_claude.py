"""The Claude client: its SDK's exceptions mapped to the error tree, and its rate-limit hints (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import anthropic
import httpx2
import pytest

from prompt_analyzer.providers import AuthError, ProviderError, RateLimited, TransientError
from prompt_analyzer.providers.claude import rate_limit_wait

from .helpers import KEYS, load_payload, offline_provider


def classify(exc: Exception) -> ProviderError:
    return offline_provider("claude").classify(exc)


def test_anthropic_errors() -> None:
    key = KEYS["claude"]
    req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages", headers={"x-api-key": key})
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {key}"}}
    resp = httpx2.Response(401, json=body, request=req, headers={"request-id": "req_1"})
    err = classify(anthropic.AuthenticationError("x", response=resp, body=body))
    assert isinstance(err, AuthError) and key not in err.message and err.request_id == "req_1"
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    resp = httpx2.Response(529, json=body, request=req)
    err = classify(anthropic.APIStatusError("x", response=resp, body=body))
    assert isinstance(err, TransientError) and "Overloaded" in err.message
    req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    assert "timeout" in classify(anthropic.APITimeoutError(request=req)).message


def test_429_request_id_from_the_body_when_no_header() -> None:
    req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}, "request_id": "req_b"}
    resp = httpx2.Response(429, json=body, request=req, headers={"retry-after": "3"})
    err = classify(anthropic.RateLimitError("x", response=resp, body=body))
    assert isinstance(err, RateLimited) and err.retry_after == 3.0 and err.request_id == "req_b"


def test_claude_ratelimit_reset_headers() -> None:
    h = load_payload("anthropic-429.json")["headers"]
    assert rate_limit_wait(h, "") == pytest.approx(1.0)
    h2 = {**h, "retry-after": "7"}
    assert rate_limit_wait(h2, "") == 7.0


def test_ratelimit_resets_measured_from_now_when_given() -> None:
    h = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "2025-04-21T19:14:16Z",
         "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2025-04-21T19:13:50Z"}
    now = datetime(2025, 4, 21, 19, 13, 46, tzinfo=UTC).timestamp()
    assert rate_limit_wait(h, "", now=now) == 30.0  # the latest exhausted reset
    assert rate_limit_wait({"anthropic-ratelimit-tokens-remaining": "1"}, "retry in 2s") == 2.0
