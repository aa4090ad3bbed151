"""A platform's lane: its client, pacer, token budget, circuit breaker and in-flight limit."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from ..config import PlatformSettings
from ..providers import Provider
from .breaker import CircuitBreaker
from .pacing import Pacer, TokenBudget
from .shared_limits import LimitsFactory, RateLimiter, TokenLimiter


@dataclass
class Lane:
    settings: PlatformSettings
    provider: Provider
    pacer: RateLimiter
    limit: asyncio.Semaphore
    breaker: CircuitBreaker
    budget: TokenLimiter | None = None
    avg_output_tokens: float = 400.0  # for the token budget's estimate of a call
    halted: asyncio.Event = field(default_factory=asyncio.Event)  # the run stops, or the breaker opened

    @property
    def name(self) -> str:
        return self.settings.name

    @classmethod
    def open(cls, settings: PlatformSettings, provider: Provider, *, breaker_threshold: int,
             limits: LimitsFactory | None = None) -> Lane:
        """``limits``: the platform's rate and token limiters (shared by several workers); None: this
        process's own."""
        halted = asyncio.Event()
        pacer, budget = limits(settings) if limits else (
            Pacer(settings.rpm), TokenBudget(settings.tpm) if settings.tpm else None)
        return cls(
            settings=settings,
            provider=provider,
            pacer=pacer,
            limit=asyncio.Semaphore(settings.max_concurrency),
            breaker=CircuitBreaker(breaker_threshold, on_open=halted.set),
            budget=budget,
            halted=halted,
        )

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
        return len(prompt) // 4 + int(self.avg_output_tokens)

    def observed_output(self, tokens: int | None) -> None:
        if tokens:
            self.avg_output_tokens = 0.9 * self.avg_output_tokens + 0.1 * tokens
