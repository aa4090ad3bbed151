"""Error classification and secret scrubbing (SDK exceptions built by hand, no network)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from google.genai import errors as genai_errors

from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from prompt_analyzer.providers import claude as claude_mod
from prompt_analyzer.providers import gemini as gemini_mod
from prompt_analyzer.providers import openai_ as openai_mod
from prompt_analyzer.providers._common import classify_status, one_line

from .helpers import ALL_SECRETS, KEYS, load_payload


def test_claude_ratelimit_reset_headers() -> None:
    h = load_payload("anthropic-429.json")["headers"]
    assert claude_mod.rate_limit_wait(h, "") == pytest.approx(1.0)
    h2 = {**h, "retry-after": "7"}
    assert claude_mod.rate_limit_wait(h2, "") == 7.0


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, PermanentError), (401, AuthError), (403, AuthError), (404, PermanentError), (408, TransientError),
     (409, TransientError), (422, PermanentError), (429, RateLimited), (500, TransientError),
     (502, TransientError), (503, TransientError), (529, TransientError), (302, MalformedResponse)],
)
def test_classify_status(status: int, cls: type[ProviderError]) -> None:
    err = classify_status("openai", status, "boom", ())
    assert type(err) is cls
    assert err.status == status
    assert f"HTTP {status}" in err.message and "boom" in err.message


def test_messages_are_short_single_lines() -> None:
    msg = one_line("a\nb\t\tc " + "x" * 1000)
    assert "\n" not in msg and len(msg) <= 300 and msg.startswith("a b c")


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
    err = openai_mod.classify_api_error(_openai_status_error(401, body), ALL_SECRETS)
    assert isinstance(err, AuthError) and err.status == 401
    assert key not in err.message and "***" in err.message
    assert "Incorrect API key provided" in err.message
    assert "Bearer" not in err.message and "Authorization" not in err.message


def test_openai_unconfigured_key_shape_is_scrubbed() -> None:
    other = "sk-proj-" + "A" * 40  # a key from another account, not in our secrets
    body = {"error": {"message": f"Incorrect API key provided: {other}.", "type": "invalid_request_error"}}
    err = openai_mod.classify_api_error(_openai_status_error(401, body), ())
    assert other not in err.message


def test_openai_429_headers_and_quota() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    err = openai_mod.classify_api_error(_openai_status_error(429, body, {"retry-after-ms": "1200"}), ())
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(1.2)
    err = openai_mod.classify_api_error(
        _openai_status_error(429, body, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}),
        (),
    )
    assert isinstance(err, RateLimited) and err.retry_after == 360.0
    quota = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                       "code": "insufficient_quota"}}
    err = openai_mod.classify_api_error(_openai_status_error(429, quota), ())
    assert type(err) is PermanentError  # out of credit: waiting does not help


def test_openai_transport_errors() -> None:
    req = httpx2.Request("POST", "https://api.openai.com/v1/responses")
    assert isinstance(openai_mod.classify_api_error(openai.APITimeoutError(request=req), ()), TransientError)
    err = openai_mod.classify_api_error(openai.APIConnectionError(request=req), ())
    assert isinstance(err, TransientError) and "connection error" in err.message


def test_anthropic_errors() -> None:
    key = KEYS["claude"]
    req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages", headers={"x-api-key": key})
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {key}"}}
    resp = httpx2.Response(401, json=body, request=req, headers={"request-id": "req_1"})
    err = claude_mod.classify_api_error(anthropic.AuthenticationError("x", response=resp, body=body), ALL_SECRETS)
    assert isinstance(err, AuthError) and key not in err.message and err.request_id == "req_1"
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    resp = httpx2.Response(529, json=body, request=req)
    err = claude_mod.classify_api_error(anthropic.APIStatusError("x", response=resp, body=body), ())
    assert isinstance(err, TransientError) and "Overloaded" in err.message


def test_gemini_errors() -> None:
    key = KEYS["gemini"]
    body = {"error": {"code": 400, "message": f"API key not valid. Please pass a valid API key. {key}",
                      "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    err = gemini_mod.classify_api_error(genai_errors.ClientError(400, body), ALL_SECRETS)
    assert isinstance(err, AuthError) and key not in err.message and "API key not valid" in err.message
    err = gemini_mod.classify_api_error(genai_errors.ClientError(429, load_payload("gemini-429.json")["body"]), ())
    assert isinstance(err, RateLimited) and err.retry_after == 26.0
    err = gemini_mod.classify_api_error(
        genai_errors.ServerError(503, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}), ()
    )
    assert isinstance(err, TransientError) and "UNAVAILABLE" in err.message
    err = gemini_mod.classify_api_error(
        genai_errors.ClientError(400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}), ()
    )
    assert type(err) is PermanentError
    assert isinstance(gemini_mod.classify_api_error(httpx.ReadTimeout("t"), ()), TransientError)


def test_error_tree() -> None:
    """The tree drawn in ``providers.errors``: what the engine retries and what stops a platform."""
    assert issubclass(QuotaExhausted, RateLimited) and issubclass(RateLimited, ProviderError)
    assert issubclass(AuthError, PermanentError) and issubclass(PermanentError, ProviderError)
    assert issubclass(TransientError, ProviderError) and issubclass(MalformedResponse, ProviderError)
    retryable = {cls: cls.retryable for cls in (ProviderError, RateLimited, QuotaExhausted, TransientError,
                                               PermanentError, AuthError, MalformedResponse)}
    assert retryable == {ProviderError: True, RateLimited: True, QuotaExhausted: False, TransientError: True,
                         PermanentError: False, AuthError: False, MalformedResponse: True}
    assert {c.error_class for c in retryable} == {
        "provider_error", "rate_limited", "quota_exhausted", "transient", "permanent", "auth", "malformed"}
    err = RateLimited("x", retry_after=2.5, request_id="r")
    assert (err.message, err.status, err.retry_after, err.request_id, str(err)) == ("x", 429, 2.5, "r", "x")
