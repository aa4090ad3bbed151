"""How many calls of a platform may be in flight: an adjustable limit and the controller that sets it.

A rate of R calls per second whose answers take L seconds keeps R x L calls in flight (Little's law).
A fixed in-flight limit below that caps the rate, one far above it costs sockets and memory for nothing,
and L is the provider's to change during a run.  So with ``max_concurrency = "auto"`` the limit is

    R x (a high percentile of recent latency, or the age of the oldest call still out if larger) x headroom

bounded below by a small floor and above by ``max_concurrency_cap`` (which also sizes the connection
pool).  Before any answer has come back the latency is taken as :data:`START_LATENCY_S`, a slow answer
with web search: starting high only lets the pacer's slots be used; the limit comes down once answers
say how fast the provider is.  The oldest call still out counts because during a slowdown the answers
that would tell are the ones not back yet.  An explicit ``max_concurrency`` fixes the limit.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import Callable

START_LATENCY_S = 10.0  # the latency assumed before any answer (a slow answer with web search)
WINDOW = 200  # recent latencies the percentile is taken over
PERCENTILE = 0.95
HEADROOM = 1.25
FLOOR = 4  # never fewer in flight than this (a retry and a slow call must not starve the lane)
MIN_SAMPLES = 20  # answers before their percentile is trusted over START_LATENCY_S (the first are the fastest)
REFRESH_S = 0.5  # while calls wait for a slot, the limit is recomputed this often (calls still out age)


class AdjustableLimit:
    """A semaphore whose limit may change while calls hold it.

    Lowering the limit never interrupts a call: new calls wait until enough have finished.  Waiters are
    served in arrival order.  ``async with limit:`` holds one slot.  ``refresh`` is called every
    :data:`REFRESH_S` while a call waits: when the provider slows down, nothing finishes that would
    otherwise tell the controller, yet the calls still out are getting older.
    """

    def __init__(self, limit: int, refresh: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        self._refresh = refresh
        self._ticker: asyncio.Task[None] | None = None  # calls refresh while anyone waits (one per limit)
        self._limit = limit
        self._held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._held

    @property
    def waiting(self) -> int:
        return len(self._waiters)  # a cancelled waiter removes itself

    def set_limit(self, limit: int) -> None:
        self._limit = max(1, int(limit))
        self._wake()

    async def acquire(self) -> None:
        if self._held < self._limit and not self.waiting:
            self._held += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._refresh is not None and (self._ticker is None or self._ticker.done()):
            self._ticker = asyncio.ensure_future(self._tick())
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted in the same instant it was cancelled: give the slot back
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    async def _tick(self) -> None:
        """While calls wait, recompute the limit every :data:`REFRESH_S` (one timer, not one per waiter)."""
        while self._waiters and self._refresh is not None:
            await asyncio.sleep(REFRESH_S)
            self._refresh()  # may raise the limit, which grants waiters their slots

    def release(self) -> None:
        if self._held <= 0:
            raise RuntimeError("release() without acquire()")
        self._held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._held < self._limit:
            fut = self._waiters.popleft()
            if fut.done():
                continue  # cancelled while waiting
            self._held += 1
            fut.set_result(None)

    async def __aenter__(self) -> AdjustableLimit:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank, q in [0, 1])."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class InFlightController:
    """The in-flight target of one platform from its rate and the latency its answers show.

    ``fixed``: an explicit ``max_concurrency`` (the target never moves).  ``clock`` is injectable for
    the unit tests of the arithmetic.
    """

    def __init__(self, *, fixed: int | None, cap: int, clock: Callable[[], float] = time.monotonic,
                 window: int = WINDOW, q: float = PERCENTILE, headroom: float = HEADROOM, floor: int = FLOOR) -> None:
        self.fixed = fixed
        self.cap = max(1, cap)
        self.clock = clock
        self.q, self.headroom, self.floor = q, headroom, floor
        self._recent: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._out: dict[int, float] = {}  # call token -> when it left
        self._tokens = itertools.count()

    @property
    def auto(self) -> bool:
        return self.fixed is None

    def sent(self) -> int:
        """A request left; returns the token to give :meth:`done`."""
        token = next(self._tokens)
        self._out[token] = self.clock()
        return token

    def done(self, token: int, latency_s: float | None = None) -> None:
        """The request ended; ``latency_s`` when it was answered (errors and 429s tell nothing)."""
        self._out.pop(token, None)
        if latency_s is not None and latency_s >= 0:
            if len(self._recent) == self._recent.maxlen:
                old = self._recent[0]
                del self._sorted[bisect.bisect_left(self._sorted, old)]
            self._recent.append(latency_s)
            bisect.insort(self._sorted, latency_s)

    def latency_s(self) -> float:
        """The latency the target is sized for: the high percentile of recent answers, or the age of the
        oldest call still out when that is larger; :data:`START_LATENCY_S` (or the slowest answer, if
        slower) until :data:`MIN_SAMPLES` answers are in."""
        if len(self._sorted) >= MIN_SAMPLES:
            observed = percentile(self._sorted, self.q)
        else:  # too few answers, and the first back are the fastest: not below the start value yet
            observed = max(self._sorted[-1], START_LATENCY_S) if self._sorted else START_LATENCY_S
        if self._out:
            oldest = next(iter(self._out.values()))  # tokens go in in time order
            observed = max(observed, self.clock() - oldest)
        return observed

    def target(self, rpm: float) -> int:
        if self.fixed is not None:
            return self.fixed
        want = math.ceil(rpm / 60.0 * self.latency_s() * self.headroom)
        return max(min(self.floor, self.cap), min(self.cap, want))
