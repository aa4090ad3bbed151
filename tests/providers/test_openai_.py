"""The OpenAI client: its SDK's exceptions mapped to the error tree, and its rate-limit hints (no network)."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from prompt_analyzer.providers import AuthError, PermanentError, ProviderError, RateLimited, TransientError
from prompt_analyzer.providers.openai_ import rate_limit_wait

from .helpers import KEYS, offline_provider


def classify(exc: Exception) -> ProviderError:
    return offline_provider("openai").classify(exc)


def _openai_status_error(status: int, body: Any, headers: dict[str, str] | None = None) -> Exception:
    req = httpx2.Request("POST", "https://api.openai.com/v1/responses",
                         headers={"Authorization": f"Bearer {KEYS['openai']}"})
    resp = httpx2.Response(status, json=body, headers=headers or {}, request=req)
    cls = {401: openai.AuthenticationError, 429: openai.RateLimitError}.get(status, openai.APIStatusError)
    return cls(str(body), response=resp, body=body)


def test_openai_401_echoed_key_is_scrubbed() -> None:
    key = KEYS["openai"]
    body = {"error": {"message": f"Incorrect API key provided: {key}. You can find your API key at x.",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    err = classify(_openai_status_error(401, body))
    assert isinstance(err, AuthError) and err.status == 401
    assert key not in err.message and "***" in err.message
    assert "Incorrect API key provided" in err.message
    assert "Bearer" not in err.message and "Authorization" not in err.message


def test_openai_unconfigured_key_shape_is_scrubbed() -> None:
    other = "sk-proj-" + "A" * 40  # a key from another account, not in our secrets
    body = {"error": {"message": f"Incorrect API key provided: {other}.", "type": "invalid_request_error"}}
    err = classify(_openai_status_error(401, body))
    assert other not in err.message


def test_openai_429_headers_and_quota() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    err = classify(_openai_status_error(429, body, {"retry-after-ms": "1200"}))
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(1.2)
    err = classify(
        _openai_status_error(429, body, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}),
    )
    assert isinstance(err, RateLimited) and err.retry_after == 360.0
    quota = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                       "code": "insufficient_quota"}}
    err = classify(_openai_status_error(429, quota))
    assert type(err) is PermanentError  # out of credit: waiting does not help


def test_openai_transport_errors() -> None:
    req = httpx2.Request("POST", "https://api.openai.com/v1/responses")
    assert isinstance(classify(openai.APITimeoutError(request=req)), TransientError)
    err = classify(openai.APIConnectionError(request=req))
    assert isinstance(err, TransientError) and "connection error" in err.message


def test_rate_limit_wait_order() -> None:
    exhausted = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"}
    assert rate_limit_wait({**exhausted, "retry-after": "4"}, "try again in 9s") == 4.0
    assert rate_limit_wait(exhausted, "try again in 9s") == 1.5
    assert rate_limit_wait({"x-ratelimit-remaining-tokens": "3", "x-ratelimit-reset-tokens": "1.5s"},
                           "Please try again in 9s") == 9.0
    assert rate_limit_wait(None, "") is None
