"""A platform's lane: its client, pacer, token budget, circuit breaker and in-flight limit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..config import PlatformSettings
from ..providers import Provider
from .breaker import CircuitBreaker
from .pacing import Pacer, TokenBudget


@dataclass
class Lane:
    settings: PlatformSettings
    provider: Provider
    pacer: Pacer
    limit: asyncio.Semaphore
    breaker: CircuitBreaker
    budget: TokenBudget | None = None
    avg_output_tokens: float = 400.0  # for the token budget's estimate of a call

    @property
    def name(self) -> str:
        return self.settings.name

    @classmethod
    def open(cls, settings: PlatformSettings, provider: Provider, *, breaker_threshold: int) -> Lane:
        return cls(
            settings=settings,
            provider=provider,
            pacer=Pacer(settings.rpm),
            limit=asyncio.Semaphore(settings.max_concurrency),
            breaker=CircuitBreaker(breaker_threshold),
            budget=TokenBudget(settings.tpm) if settings.tpm else None,
        )

    def estimate_tokens(self, prompt: str) -> int:
        return len(prompt) // 4 + int(self.avg_output_tokens)

    def observed_output(self, tokens: int | None) -> None:
        if tokens:
            self.avg_output_tokens = 0.9 * self.avg_output_tokens + 0.1 * tokens
