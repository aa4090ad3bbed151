"""The one retry policy, as small pure functions (after openai-python's ``_base_client``).

``should_retry``: rate limits, transient and malformed answers are retried; permanent and auth
errors are not.  ``quota_exhausted``: a rate limit whose hint is longer than ``MAX_RETRY_AFTER_S`` is
not waited for: the platform stops for the run.
``wait_seconds``: a rate-limited answer waits what the provider asked (capped);
anything else backs off exponentially with full jitter.
"""

from __future__ import annotations

import random

from ..providers._types import ProviderError, RateLimited

MAX_RETRY_AFTER_S = 120.0


def should_retry(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def quota_exhausted(exc: BaseException) -> bool:
    """A rate limit whose hint is past what a retry waits: the quota is gone (for the day, say)."""
    return isinstance(exc, RateLimited) and exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_S


def retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, RateLimited) and exc.retry_after is not None and exc.retry_after >= 0:
        return min(exc.retry_after, MAX_RETRY_AFTER_S)
    return None


def backoff(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]; attempt counts from 1."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def wait_seconds(exc: BaseException, attempt: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    hinted = retry_after(exc)
    if hinted is not None:
        # A little jitter on top, so callers told the same instant do not all return together.
        return hinted + random.uniform(0, min(1.0, hinted * 0.1 + 0.05))
    return backoff(attempt, base=base, cap=cap)
