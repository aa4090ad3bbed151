"""Compatibility alias: the error tree moved to :mod:`.errors`, the result shapes to :mod:`.results`.

Kept so ``from ..providers._types import ...`` (engine/breaker.py, engine/retry.py) still works; new code
imports from ``prompt_analyzer.providers``.
"""

from __future__ import annotations

from ..redact import scrub as scrub
from .errors import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from .results import Citation, ProviderResult

__all__ = [
    "AuthError",
    "Citation",
    "MalformedResponse",
    "PermanentError",
    "ProviderError",
    "ProviderResult",
    "QuotaExhausted",
    "RateLimited",
    "TransientError",
    "scrub",
]
