"""The error tree, the one status classification, and the helpers that word provider errors."""

from __future__ import annotations

import httpx
import pytest

from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from prompt_analyzer.providers.errors import error_for_status, error_text, one_line, response_excerpt


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, PermanentError), (401, AuthError), (403, AuthError), (404, PermanentError), (408, TransientError),
     (409, TransientError), (422, PermanentError), (429, RateLimited), (500, TransientError),
     (502, TransientError), (503, TransientError), (529, TransientError), (302, MalformedResponse)],
)
def test_error_for_status(status: int, cls: type[ProviderError]) -> None:
    err = error_for_status(status, "openai: boom", request_id="r", retry_after=3.0)
    assert type(err) is cls
    assert (err.status, err.message, err.request_id) == (status, "openai: boom", "r")
    if isinstance(err, RateLimited):
        assert err.retry_after == 3.0


def test_error_for_status_hints_from_the_body() -> None:
    assert type(error_for_status(400, "m", auth=True)) is AuthError  # Gemini's API_KEY_INVALID
    assert type(error_for_status(429, "m", permanent=True)) is PermanentError  # OpenAI's insufficient_quota
    assert type(error_for_status(401, "m", permanent=True)) is AuthError


def test_error_text_reads_every_providers_error_body() -> None:
    assert error_text({"error": {"message": "Rate limit", "type": "requests"}}) == "requests: Rate limit"
    assert error_text({"error": {"message": "x: boom", "type": "x"}}) == "x: boom"
    assert error_text({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}) == (
        "INVALID_ARGUMENT: bad")
    assert error_text({"error": "plain"}) == "plain"
    assert error_text({"detail": "nope"}) == "nope"
    assert error_text({"message": "m"}) == "m"
    assert error_text("  text body ") == "  text body "
    assert error_text(None, fallback="Bad Gateway") == "Bad Gateway"


def test_response_excerpt() -> None:
    class Unreadable:
        @property
        def text(self) -> str:
            raise RuntimeError("stream consumed")

    assert response_excerpt(None) == "" and response_excerpt(Unreadable()) == ""
    assert response_excerpt(httpx.Response(500, text="x" * 600)) == "x" * 500


def test_messages_are_short_single_lines() -> None:
    msg = one_line("a\nb\t\tc " + "x" * 1000)
    assert "\n" not in msg and len(msg) <= 300 and msg.startswith("a b c")


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
