"""A circuit breaker per platform: stop calling a platform that cannot answer.

Opens at once on an auth error (every further call would fail the same way) or after
``threshold`` consecutive pairs that ended failed.  Rate limits are pacing, not failures: a pair that
ended rate limited neither counts nor resets the streak (the pacer slows the platform instead).
:meth:`trip` opens it for a reason of the caller's, e.g. a quota gone for longer than a retry may
wait.  Once open it stays open for the rest of the run, and ``error_class`` names why for the pairs
left uncalled.
"""

from __future__ import annotations

from collections.abc import Callable

from ..providers import AuthError, ProviderError, RateLimited
from ..statuses import ErrorClass


class CircuitBreaker:
    def __init__(self, threshold: int = 5, *, on_open: Callable[[], object] | None = None) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.reason: str | None = None
        self.error_class: str = ErrorClass.CIRCUIT_OPEN
        self._on_open = on_open  # wakes the calls of this platform waiting for their slot

    @property
    def open(self) -> bool:
        return self.reason is not None

    def success(self) -> None:
        self.consecutive = 0

    def failure(self, exc: BaseException) -> bool:
        """Record a pair that ended failed; True if this opened the breaker."""
        if self.open or isinstance(exc, RateLimited):
            return False
        self.consecutive += 1
        msg = exc.message if isinstance(exc, ProviderError) else str(exc)
        if isinstance(exc, AuthError):
            self._open(f"authentication failed: {msg}")
        elif self.consecutive >= self.threshold:
            self._open(f"{self.consecutive} consecutive failures, last: {msg}")
        return self.open

    def trip(self, reason: str, error_class: str) -> bool:
        """Open for ``reason``; the pairs left uncalled end with ``error_class``.  True if this opened it."""
        if self.open:
            return False
        self.error_class = error_class
        self._open(reason)
        return True

    def _open(self, reason: str) -> None:
        self.reason = reason
        if self._on_open is not None:
            self._on_open()
