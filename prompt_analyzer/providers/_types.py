"""The one shape the engine sees, whatever the platform.

Error tree (providers classify; the engine alone decides whether and when to retry)::

    ProviderError
    ├── RateLimited          429 / quota: retry after ``retry_after`` seconds (the provider's hint)
    │   └── QuotaExhausted   the hint is longer than a retry may wait: the platform stops for the run
    ├── TransientError       5xx, timeout, connection reset: retry with backoff
    ├── PermanentError       other 4xx, refusal, bad request: do not retry
    │   └── AuthError        401 / 403: do not retry; opens the platform's circuit breaker
    └── MalformedResponse    a 200 that does not parse, or a failed status inside a 200: retry

Every message is scrubbed of secrets before it is built into an exception (see ``scrub``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..redact import scrub as scrub  # re-exported: providers build messages with it


@dataclass(frozen=True, slots=True)
class Citation:
    url: str  # normalised (see providers.citations.normalize_url)
    domain: str  # host without "www."
    title: str | None
    position: int  # 1-based order of first appearance within the answer
    cited: bool  # True: the answer text cites it; False: only retrieved


@dataclass(slots=True)
class ProviderResult:
    text: str
    model_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost: Decimal | None  # USD; None when usage is missing
    latency_ms: int
    citations: list[Citation] = field(default_factory=list)
    request_id: str | None = None
    raw: Any = None  # the decoded JSON response, kept for reparsing
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. provider_cost, searches, usage_missing


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
