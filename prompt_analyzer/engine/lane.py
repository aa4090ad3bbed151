"""A platform's lane: its client, limits (pacer, token budgets, in-flight limit), breaker and daily quota."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from ..config import PlatformSettings
from ..providers import Provider, ProviderError
from .breaker import CircuitBreaker
from .concurrency import AdjustableLimit
from .limits import DailyQuota, LaneLimits
from .pacing import RateLimiter, TokenLimiter
from .shared_limits import LimitsFactory

PROBE_TIMEOUT_S = 5.0


@dataclass
class Lane:
    settings: PlatformSettings
    provider: Provider
    limits: LaneLimits
    breaker: CircuitBreaker
    daily: DailyQuota | None = None  # rpd
    avg_output_tokens: float = 400.0  # for the token budgets' estimate of a call
    avg_input_tokens: float = 0.0  # billed input (search results included), once answers tell
    halted: asyncio.Event = field(default_factory=asyncio.Event)  # the run stops, or the breaker opened

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def pacer(self) -> RateLimiter:
        return self.limits.pacer

    @property
    def limit(self) -> AdjustableLimit:
        return self.limits.limit

    @property
    def budget(self) -> TokenLimiter | None:
        return self.limits.budget

    @property
    def workers(self) -> int:
        """Worker tasks of a lane schedule: enough for the largest in-flight limit the lane may take."""
        return self.settings.max_concurrency or self.settings.max_concurrency_cap

    @classmethod
    def open(cls, settings: PlatformSettings, provider: Provider, *, breaker_threshold: int,
             daily: DailyQuota | None = None, limits: LimitsFactory | None = None) -> Lane:
        """``limits``: the platform's rate limiter and token budgets shared by several workers (Redis, or a
        split of the limits); None: this process's own."""
        halted = asyncio.Event()
        pacer, budget = limits(settings) if limits else (None, None)
        return cls(
            settings=settings,
            provider=provider,
            limits=LaneLimits(settings, pacer=pacer, budget=budget),
            breaker=CircuitBreaker(breaker_threshold, on_open=halted.set),
            daily=daily,
            halted=halted,
        )

    async def probe_limits(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """With a limit on "auto", ask the provider's models list (free) for the limits it states, so the
        first calls are paced by them rather than by the conservative start.  Best effort: a failure or
        silence leaves it to the answers (a bad key is the first call's to report)."""
        s = self.settings
        lister = getattr(self.provider, "list_models", None)
        if lister is None or not getattr(self.provider, "states_limits", False) or (
                s.rpm is not None and s.tpm is not None):
            return
        try:
            async with asyncio.timeout(timeout_s):
                listed = await lister()
        except (TimeoutError, ProviderError):
            return
        self.limits.observe(listed.limits)

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless the lane halts first (a stop, or its breaker opening); True if it slept it all.
        Every wait of a call of this platform (pacer slot, token budget, backoff) goes through here."""
        if self.halted.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self.halted.wait()
        return not self.halted.is_set()

    def estimate_tokens(self, prompt: str) -> int:
        return self.estimate_input(prompt) + int(self.avg_output_tokens)

    def estimate_input(self, prompt: str) -> int:
        return max(len(prompt) // 4, int(self.avg_input_tokens))

    def observed_output(self, tokens: int | None) -> None:
        if tokens:
            self.avg_output_tokens = 0.9 * self.avg_output_tokens + 0.1 * tokens

    def observed_input(self, tokens: int | None) -> None:
        if tokens:
            self.avg_input_tokens = (0.9 * self.avg_input_tokens + 0.1 * tokens) if self.avg_input_tokens else tokens
