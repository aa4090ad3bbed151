"""A platform's lane: its client, limits (pacer, token budgets, in-flight limit), breaker and daily quota."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import PlatformSettings
from ..providers import Provider, ProviderError
from .breaker import CircuitBreaker
from .concurrency import AdjustableLimit
from .limits import DailyQuota, LaneLimits
from .pacing import RateLimiter, TokenLimiter
from .shared_limits import LimitsFactory

PROBE_TIMEOUT_S = 5.0


class Client:
    """A platform's provider, made in a worker thread while the run goes on.

    Making one imports its SDK and builds its HTTP client (TLS context included): up to a second per
    provider, three SDKs in all.  Made one after the other before the first call, they would all stand
    between ``analyze run`` and its first request; made here, each platform calls as soon as its own
    client is ready, while the others' are still being made."""

    def __init__(self, make: Callable[[], Provider]) -> None:
        self._made: asyncio.Future[Provider] = asyncio.ensure_future(asyncio.to_thread(make))

    async def get(self) -> Provider:
        """The provider, once made; what making it raised, every time."""
        if self._made.done():  # every call after the first: no shield to build
            return self._made.result()
        return await asyncio.shield(self._made)

    async def aclose(self) -> None:
        """Close the provider (waiting for it to be made: a thread cannot be cancelled; it is bounded
        by the imports and the client's construction)."""
        try:
            provider = await self.get()
        except Exception:  # never made: nothing to close
            return
        await provider.aclose()


@dataclass
class Lane:
    settings: PlatformSettings
    client: Client
    limits: LaneLimits
    breaker: CircuitBreaker
    daily: DailyQuota | None = None  # rpd
    avg_output_tokens: float = 400.0  # for the token budgets' estimate of a call
    avg_input_tokens: float = 0.0  # billed input (search results included), once answers tell
    halted: asyncio.Event = field(default_factory=asyncio.Event)  # the run stops, or the breaker opened
    _probe: asyncio.Future[None] | None = None

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
    def open(cls, settings: PlatformSettings, make: Callable[[], Provider], *, breaker_threshold: int,
             daily: DailyQuota | None = None, limits: LimitsFactory | None = None) -> Lane:
        """``make``: the platform's provider factory (run in a thread, :class:`Client`).  ``limits``: the
        platform's rate limiter and token budgets shared by several workers (Redis, or a split of the
        limits); None: this process's own."""
        halted = asyncio.Event()
        pacer, budget = limits(settings) if limits else (None, None)
        return cls(
            settings=settings,
            client=Client(make),
            limits=LaneLimits(settings, pacer=pacer, budget=budget),
            breaker=CircuitBreaker(breaker_threshold, on_open=halted.set),
            daily=daily,
            halted=halted,
        )

    def start_probe(self) -> None:
        """Make the client and probe the limits in the background (:meth:`provider` waits for both)."""
        if self._probe is None:
            self._probe = asyncio.ensure_future(self.probe_limits())

    def stop_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()

    async def provider(self) -> Provider:
        """The platform's client, once made and, with a limit on "auto", once the limits the provider
        states are known (the lane's first calls are paced by them, not sent before them)."""
        provider = await self.client.get()
        if self._probe is not None and not self._probe.done():
            await asyncio.wait({self._probe})  # bounded (PROBE_TIMEOUT_S); a cancelled probe ends the wait
        return provider

    async def probe_limits(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """With a limit on "auto", ask the provider's models list (free) for the limits it states, so the
        first calls are paced by them rather than by the conservative start.  Best effort: a failure or
        silence leaves it to the answers (a bad key is the first call's to report)."""
        s = self.settings
        if s.rpm is not None and s.tpm is not None:
            return
        try:
            provider = await self.client.get()
        except Exception:  # the first call reports it
            return
        lister = getattr(provider, "list_models", None)
        if lister is None or not getattr(provider, "states_limits", False):
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
