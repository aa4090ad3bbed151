"""The provider retry policy, as small pure functions (after openai-python's ``_base_client``).

``should_retry``: rate limits, transient and malformed answers are retried; permanent and auth
errors are not.  ``quota_exhausted``: a rate limit whose hint is longer than ``RETRY_AFTER_CAP_S`` is
not waited for: the platform stops for the run.
``wait_seconds``: a rate-limited answer waits what the provider asked; anything else backs off
exponentially with full jitter.  The numbers live in :mod:`prompt_analyzer.backoff`.
"""

from __future__ import annotations

import random

from ..backoff import PROVIDER_FIRST_S, PROVIDER_MAX_S, RETRY_AFTER_CAP_S, full_jitter, with_hint_jitter
from ..providers import ProviderError, RateLimited

MAX_RETRY_AFTER_S = RETRY_AFTER_CAP_S


def should_retry(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def quota_exhausted(exc: BaseException) -> bool:
    """A rate limit whose hint is past what a retry waits: the quota is gone (for the day, say)."""
    return isinstance(exc, RateLimited) and exc.retry_after is not None and exc.retry_after > RETRY_AFTER_CAP_S


def retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, RateLimited) and exc.retry_after is not None and exc.retry_after >= 0:
        return min(exc.retry_after, RETRY_AFTER_CAP_S)
    return None


def backoff(
    attempt: int, *, base: float = PROVIDER_FIRST_S, cap: float = PROVIDER_MAX_S, rng: random.Random | None = None
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]; attempt counts from 1."""
    return full_jitter(attempt, first=base, cap=cap, rng=rng)


def wait_seconds(
    exc: BaseException, attempt: int, *, base: float = PROVIDER_FIRST_S, cap: float = PROVIDER_MAX_S
) -> float:
    hinted = retry_after(exc)
    if hinted is not None:
        return with_hint_jitter(hinted)
    return backoff(attempt, base=base, cap=cap)
