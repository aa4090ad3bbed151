"""The error tree every provider raises into, whatever its SDK (providers classify; the engine alone
decides whether and when to retry)::

    ProviderError            anything else a call can end in (an SDK bug, a new error type): retry
    ├── RateLimited          429 / quota: retry after ``retry_after`` seconds (the provider's hint)
    │   └── QuotaExhausted   the hint is longer than a retry may wait: the platform stops for the run
    ├── TransientError       5xx, 408, 409, timeout, connection reset: retry with backoff
    ├── PermanentError       other 4xx, refusal, blocked prompt, out of credit: do not retry
    │   └── AuthError        401 / 403, a rejected key: do not retry; opens the platform's breaker
    └── MalformedResponse    a 200 that does not parse, or a failed status inside a 200: retry

Every message is one line, names the platform and the HTTP status, and is scrubbed of secrets
before the exception is built (``BaseProvider.message`` does all three).  Which class an HTTP status
gets is decided here, once, by :func:`error_for_status`; each provider module only says which of its
SDK's exceptions carry which status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "MalformedResponse",
    "PermanentError",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "TransientError",
    "error_for_status",
    "error_text",
    "one_line",
    "response_excerpt",
]

MAX_MESSAGE = 300


class ProviderError(Exception):
    """Base of every classified provider failure."""

    error_class = "provider_error"
    retryable = True
    limits: Any = None  # the rate limits the error states (a ratelimit_headers.StatedLimits), if any

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id


class RateLimited(ProviderError):
    error_class = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after = retry_after


class QuotaExhausted(RateLimited):
    """A rate limit whose end is further away than any retry waits (a daily quota, say).  Raised by the
    engine's retry policy, which owns that threshold, from the provider's :class:`RateLimited`."""

    error_class = "quota_exhausted"
    retryable = False


class TransientError(ProviderError):
    error_class = "transient"


class PermanentError(ProviderError):
    error_class = "permanent"
    retryable = False


class AuthError(PermanentError):
    error_class = "auth"


class MalformedResponse(ProviderError):
    error_class = "malformed"


def error_for_status(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    request_id: str | None = None,
    auth: bool = False,
    permanent: bool = False,
) -> ProviderError:
    """One HTTP status (plus what the body said) to one class of the tree; ``message`` is final.

    ``auth``: the body says the key was refused whatever the status (Gemini answers 400);
    ``permanent``: waiting cannot help though the status says otherwise (OpenAI's out-of-credit 429).
    """
    if auth or status in (401, 403):
        return AuthError(message, status=status, request_id=request_id)
    if permanent:
        return PermanentError(message, status=status, request_id=request_id)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, status=status, request_id=request_id)
    if status >= 500 or status in (408, 409):  # 409: lock conflicts the SDKs themselves retry
        return TransientError(message, status=status, request_id=request_id)
    if 400 <= status < 500:
        return PermanentError(message, status=status, request_id=request_id)
    # 1xx/3xx (or 2xx other than what we expect): the server said something we cannot use.
    return MalformedResponse(message, status=status, request_id=request_id)


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Collapse whitespace and cut: error messages go to logs and table cells."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_text(body: Any, fallback: str = "") -> str:
    """The provider's own message from a decoded error body (OpenAI, Anthropic, Gemini, Perplexity)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            kind = err.get("type") or err.get("status") or err.get("code")
            if isinstance(msg, str) and msg:
                return f"{kind}: {msg}" if isinstance(kind, str) and kind and kind not in msg else msg
        elif isinstance(err, str) and err:
            return err
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def response_excerpt(response: Any, limit: int = 500) -> str:
    """The start of an HTTP response's body, for a message; ``""`` when there is none or it cannot be read."""
    if response is None:
        return ""
    try:
        return str(response.text)[:limit]
    except Exception:  # an unreadable body only shortens the message
        return ""
