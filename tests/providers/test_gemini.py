"""The Gemini client: google-genai's exceptions mapped to the error tree, RetryInfo, key errors (no network)."""

from __future__ import annotations

import httpx
from google.genai import errors as genai_errors

from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    RateLimited,
    TransientError,
)
from prompt_analyzer.providers.gemini import is_key_error, retry_delay

from .helpers import KEYS, load_payload, offline_provider


def classify(exc: Exception) -> ProviderError:
    return offline_provider("gemini").classify(exc)


def test_gemini_errors() -> None:
    key = KEYS["gemini"]
    body = {"error": {"code": 400, "message": f"API key not valid. Please pass a valid API key. {key}",
                      "status": "INVALID_ARGUMENT",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    err = classify(genai_errors.ClientError(400, body))
    assert isinstance(err, AuthError) and key not in err.message and "API key not valid" in err.message
    err = classify(genai_errors.ClientError(429, load_payload("gemini-429.json")["body"]))
    assert isinstance(err, RateLimited) and err.retry_after == 26.0
    err = classify(
        genai_errors.ServerError(503, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
    )
    assert isinstance(err, TransientError) and "UNAVAILABLE" in err.message
    err = classify(
        genai_errors.ClientError(400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}),
    )
    assert type(err) is PermanentError
    assert isinstance(classify(httpx.ReadTimeout("t")), TransientError)


def test_sdk_choking_on_a_response_is_malformed() -> None:
    err = classify(ValueError("1 validation error for GenerateContentResponse"))
    assert type(err) is MalformedResponse and err.status == 200
    assert err.message.startswith("gemini: HTTP 200: unparseable response (ValueError: 1 validation error")


def test_429_wait_from_retry_info_then_headers() -> None:
    body = {"error": {"code": 429, "message": "Quota exceeded. Please retry in 9s.", "status": "RESOURCE_EXHAUSTED"}}
    resp = httpx.Response(429, headers={"retry-after": "4"}, request=httpx.Request("POST", "https://g/"))
    err = classify(genai_errors.ClientError(429, body, resp))
    assert isinstance(err, RateLimited) and err.retry_after == 4.0
    err = classify(genai_errors.ClientError(429, body))
    assert isinstance(err, RateLimited) and err.retry_after == 9.0


def test_gemini_retry_info_from_real_body() -> None:
    body = load_payload("gemini-429.json")["body"]
    assert retry_delay(body) == 26.0
    assert retry_delay(body["error"]) == 26.0  # also from the inner error object
    assert retry_delay({"error": {"details": [{"@type": "x.QuotaFailure"}]}}) is None
    assert retry_delay("garbage") is None


def test_is_key_error() -> None:
    assert is_key_error({"error": {"details": [{"reason": "API_KEY_SERVICE_BLOCKED"}]}})
    assert is_key_error({"error": {"message": "API key expired. Please renew the API key."}})
    assert not is_key_error({"error": {"message": "bad request"}}) and not is_key_error(None)
