"""A circuit breaker per platform: stop calling a platform that cannot answer.

Opens at once on an auth error (every further call would fail the same way) or after
``threshold`` consecutive pairs that ended failed; 429s are pacing, not failures, and do not count.
Once open it stays open for the rest of the run.
"""

from __future__ import annotations

from ..providers._types import AuthError, ProviderError


class CircuitBreaker:
    def __init__(self, threshold: int = 5) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.reason: str | None = None

    @property
    def open(self) -> bool:
        return self.reason is not None

    def success(self) -> None:
        self.consecutive = 0

    def failure(self, exc: BaseException) -> bool:
        """Record a pair that ended failed; True if this opened the breaker."""
        if self.open:
            return False
        self.consecutive += 1
        msg = exc.message if isinstance(exc, ProviderError) else str(exc)
        if isinstance(exc, AuthError):
            self.reason = f"authentication failed: {msg}"
        elif self.consecutive >= self.threshold:
            self.reason = f"{self.consecutive} consecutive failures, last: {msg}"
        return self.open
