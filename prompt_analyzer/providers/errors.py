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
before the exception is built (``BaseProvider.message`` does all three).
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "MalformedResponse",
    "PermanentError",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "TransientError",
]


class ProviderError(Exception):
    """Base of every classified provider failure."""

    error_class = "provider_error"
    retryable = True

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
