"""A platform's rate limits in force during a run: configured, stated by the provider, or learned.

Rules (``rpm`` and ``tpm`` alike):

* a configured number is the upper bound; a lower limit the provider states wins over it (several
  keys, or another tool, may share the account's quota: the provider knows best);
* ``"auto"``: the limit the provider states (:mod:`prompt_analyzer.providers.ratelimit_headers`: OpenAI
  and Anthropic on every answer, Gemini in a 429's body).  Until it states one, the pace is
  ``auto_start_rpm`` (a conservative tier-1 figure) and, while nothing is stated and no 429 came,
  grows by :data:`RAMP_STEP` x that start every :data:`RAMP_EVERY_S` seconds of answers (additive
  increase); the first 429 cuts it to :data:`BACKOFF` of itself and the growth stops for the run;
* a token budget exists only where a token limit is configured or stated; Anthropic states its input
  and output token limits separately and both are kept, each by its own budget;
* the in-flight limit follows the pace in force (:mod:`.concurrency`).

:meth:`LaneLimits.snapshot` is what ``analyze status`` shows and what is recorded on the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import PlatformSettings
from ..providers.ratelimit_headers import StatedLimits
from .concurrency import AdjustableLimit, InFlightController
from .pacing import BudgetFactory, Pacer, RateLimiter, TokenBudget, TokenLimiter

log = logging.getLogger("prompt_analyzer.engine")

RAMP_EVERY_S = 5.0
RAMP_STEP = 0.25  # of auto_start_rpm, per RAMP_EVERY_S
BACKOFF = 0.7
# A stated token limit is kept a little under: the provider's bucket counts from when a request arrives
# and bills the answer's real size, ours from when it leaves and corrects once the answer is back.
TOKEN_HEADROOM = 0.98
LOG_CHANGE = 0.10  # an in-flight limit change worth a log line (relative)


class LaneLimits:
    """The pacer, token budgets and in-flight limit of one lane, and what moves them."""

    def __init__(self, settings: PlatformSettings, *, clock: Callable[[], float] = time.monotonic,
                 pacer: RateLimiter | None = None, budget: BudgetFactory | None = None,
                 ) -> None:
        """``pacer`` / ``budget`` (a factory of ``(kind, tpm, ceiling)``, kind ``tokens`` / ``input`` /
        ``output``): limiters shared with other workers;
        by default this process's own."""
        self.settings = settings
        self.name = settings.name
        self.clock = clock
        auto = settings.rpm is None
        start = settings.auto_start_rpm if auto else float(settings.rpm or 0)
        self.pacer: RateLimiter = pacer if pacer is not None else Pacer(start, ceiling=settings.rpm)
        self._new_budget: BudgetFactory = (
            budget if budget is not None else lambda kind, tpm, ceiling: TokenBudget(tpm, ceiling=ceiling))
        self.rpm_source = "auto-start" if auto else "configured"
        self.budget = self._new_budget("tokens", settings.tpm, settings.tpm) if settings.tpm else None  # total tokens
        self.input_budget: TokenLimiter | None = None  # Anthropic's input tokens per minute
        self.output_budget: TokenLimiter | None = None  # Anthropic's output tokens per minute
        self.tpm_source = "configured" if settings.tpm else None
        self.stated: StatedLimits | None = None  # the last statement seen
        self._ramping = auto
        self._last_ramp = clock()
        self.concurrency = InFlightController(fixed=settings.max_concurrency, cap=settings.max_concurrency_cap,
                                              clock=clock)
        self.limit = AdjustableLimit(self.concurrency.target(self.pacer.rpm), refresh=self._size)
        self._logged_limit = self.limit.limit
        log.info("%s: in-flight limit %d at start (%.0f rpm x %.2f s)", self.name, self.limit.limit, self.pacer.rpm,
                 self.concurrency.latency_s(), extra={"event": "in_flight_limit", "platform": self.name})

    # ------------------------------------------------------------------ what the provider says

    def observe(self, stated: StatedLimits | None) -> None:
        """Apply an answer's or an error's statement of the limits (None: it stated nothing)."""
        if stated is None or not stated.any:
            return
        self.stated = stated
        if stated.rpm:
            before = self.pacer.rpm
            self.pacer.set_rpm(stated.rpm)
            bound = self.settings.rpm
            self.rpm_source = "configured" if bound is not None and bound <= stated.rpm else "stated"
            self._ramping = False
            if before != self.pacer.rpm:
                log.info("%s: %g requests per minute in force (the provider states %g)", self.name,
                         self.pacer.rpm, stated.rpm, extra={"event": "limits", "platform": self.name,
                                                           "rpm": self.pacer.rpm})
        if stated.input_tpm or stated.output_tpm:
            # Anthropic: input and output are the limits; its "tokens" is whichever binds now.
            self.input_budget = self._budget("input", self.input_budget, stated.input_tpm, None)
            self.output_budget = self._budget("output", self.output_budget, stated.output_tpm, None)
            self.tpm_source = "stated"
        elif stated.tpm:
            self.budget = self._budget("tokens", self.budget, stated.tpm, self.settings.tpm)
            self.tpm_source = "stated"
        self._size()

    def _budget(self, kind: str, budget: TokenLimiter | None, tpm: float | None,
                ceiling: float | None) -> TokenLimiter | None:
        if not tpm:
            return budget
        tpm *= TOKEN_HEADROOM
        if budget is None:
            return self._new_budget(kind, tpm, ceiling)
        budget.set_tpm(tpm)
        return budget

    def rate_limited(self, stated: StatedLimits | None) -> None:
        """A 429 that is not a quota gone for the day: learn what it states, and end the ramp."""
        self.observe(stated)
        if self.rpm_source in ("auto-start", "ramping"):
            self.pacer.set_rpm(max(1.0, self.pacer.rpm * BACKOFF))
            self.rpm_source = "backed-off"
            self._ramping = False
            log.info("%s: 429 with no stated limit: %g requests per minute from now on", self.name, self.pacer.rpm,
                     extra={"event": "limits", "platform": self.name, "rpm": self.pacer.rpm})
        self._size()

    # ------------------------------------------------------------------ what the calls show

    def sent(self) -> int:
        return self.concurrency.sent()

    def done(self, token: int, latency_s: float | None) -> None:
        self.concurrency.done(token, latency_s)
        if latency_s is not None and self._ramping:
            now = self.clock()
            if now - self._last_ramp >= RAMP_EVERY_S:
                self._last_ramp = now
                self.pacer.set_rpm(self.pacer.rpm + RAMP_STEP * self.settings.auto_start_rpm)
                self.rpm_source = "ramping"
        self._size()

    def _size(self) -> None:
        target = self.concurrency.target(self.pacer.rpm)
        if target == self.limit.limit:
            return
        self.limit.set_limit(target)
        if abs(target - self._logged_limit) >= max(2, LOG_CHANGE * self._logged_limit):
            self._logged_limit = target
            log.info("%s: in-flight limit %d (%.0f rpm x %.2f s)", self.name, target, self.pacer.rpm,
                     self.concurrency.latency_s(),
                     extra={"event": "in_flight_limit", "platform": self.name, "limit": target,
                            "rpm": round(self.pacer.rpm, 3), "latency_s": round(self.concurrency.latency_s(), 3)})

    # ------------------------------------------------------------------ what is shown

    def snapshot(self) -> dict[str, Any]:
        """The limits in force, for ``analyze status`` and the batch's row."""
        out: dict[str, Any] = {"rpm": round(self.pacer.rpm, 3), "rpm_source": self.rpm_source,
                               "in_flight_limit": self.limit.limit,
                               "max_concurrency": "auto" if self.concurrency.auto else self.concurrency.fixed}
        for key, budget in (("tpm", self.budget), ("input_tpm", self.input_budget),
                            ("output_tpm", self.output_budget)):
            if budget is not None:
                out[key] = round(budget.tpm, 3)
        if self.tpm_source:
            out["tpm_source"] = self.tpm_source
        if self.settings.rpd:
            out["rpd"] = self.settings.rpd
        if self.stated is not None:
            out["stated"] = self.stated.to_dict()
        return out


Reserve = Callable[[int], Awaitable[int]]  # ask the database for n of today's requests; returns those granted
GiveBack = Callable[[int], Awaitable[None]]

DAILY_CHUNK = 20  # requests reserved per database round trip


class DailyQuota:
    """``rpd``: requests per UTC day, counted in the database so restarts and other workers count too.

    Requests are reserved in chunks (one round trip per :data:`DAILY_CHUNK` calls, at most 1% of the
    quota at a time) before the call is paced; what a run reserved and did not send is given back at
    its end.  A process killed in between leaves its unsent reservation counted (at most one chunk):
    the count errs on the side of the quota.
    """

    def __init__(self, rpd: int, reserve: Reserve, give_back: GiveBack) -> None:
        self.rpd = rpd
        self._reserve, self._give_back = reserve, give_back
        self.chunk = max(1, min(DAILY_CHUNK, rpd // 100))
        self.held = 0  # reserved in the database, not yet spent
        self.gone = False
        self._lock: asyncio.Lock | None = None

    async def take(self) -> bool:
        """One request of today's quota; False when the day's quota is spent."""
        if self.held > 0:
            self.held -= 1
            return True
        if self.gone:
            return False
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.held == 0 and not self.gone:
                granted = await self._reserve(self.chunk)
                self.held += granted
                self.gone = granted == 0
        if self.held > 0:
            self.held -= 1
            return True
        return False

    def unspent(self) -> None:
        """A request taken whose call never left."""
        self.held += 1

    async def close(self) -> None:
        """Give back what was reserved and not sent."""
        held, self.held = self.held, 0
        if held:
            await self._give_back(held)
