"""One quota for every worker: each platform's request rate, token budget, 429 pause and learned
limits shared through Redis, so N workers on any number of machines together stay at the provider's
limit, evenly spaced, not N times it.

The rate is a GCRA (generic cell rate algorithm, "virtual scheduling") in one Lua script run by
redis-py's asyncio client: the script reads Redis's own clock, takes the next free slot of the
platform (``max(now, theoretical arrival time, pause end)``), moves the slot on by ``60 / rpm`` and
returns how long the caller waits.  Every call of every worker gets a slot of its own: calls are evenly
spaced across workers, never a burst, and machines' clocks do not matter (only Redis's is read).  The
token budget is the same bucket as :class:`~.pacing.TokenBudget`, kept in a Redis hash: a call takes its
estimate at once (the bucket may go into debt) and waits for the debt to be paid at the rate.

Keys are namespaced by platform and provider account: ``<prefix>:<platform>:<account>`` where the
account is a hash of the base URL and the key (never the key itself), so two projects on two accounts
never share a quota, and two batches on one account do.

Without Redis each worker takes ``rpm / N`` (and ``tpm / N``) of each platform's limit, N being the live
workers of the batch (re-read at every heartbeat): correct, but a 429 or a learned limit stays with the
worker that saw it.  If Redis goes away mid-run, every limiter falls back to that split for the rest of
the run, and the run goes on (logged once).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import PlatformSettings
from .pacing import BudgetFactory, Pacer, RateLimiter, TokenBudget, TokenLimiter

log = logging.getLogger("prompt_analyzer.engine")

Sleep = Callable[[float], Awaitable[object]]

_REDIS_TIMEOUT_S = 2.0  # a Redis that does not answer within this is gone: fall back, do not hang
_KEY_TTL_MS = 3_600_000  # a platform's state outlives a pause of the run, not a day
_HEADROOM = 0.995  # as the local pacer: a hair under the limit, so jitter cannot bunch two calls


LimitsFactory = Callable[[PlatformSettings], tuple[RateLimiter, BudgetFactory]]


# KEYS[1]: the platform's hash {tat, paused, rpm}.  ARGV: configured rpm, headroom, ttl ms.
# Times in microseconds of Redis's clock, stored with %.0f (a double holds them exactly; tostring would
# round them to 14 digits).  Returns {wait in us, rpm in force} as strings.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h = redis.call('HMGET', KEYS[1], 'tat', 'paused', 'rpm')
local rpm = tonumber(h[3]) or tonumber(ARGV[1])
local interval = 60000000 / (rpm * tonumber(ARGV[2]))
local slot = math.max(now, tonumber(h[1]) or 0, tonumber(h[2]) or 0)
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', slot + interval))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {string.format('%.0f', slot - now), tostring(rpm)}
"""

# A 429: nobody's next slot comes before now + ARGV[1] seconds (a longer pause already set stays).
_PAUSE = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1]) * 1000000
local cur = tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0
if until_ > cur then redis.call('HSET', KEYS[1], 'paused', string.format('%.0f', until_)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1]: the platform's token hash {level, stamp, tpm}.  ARGV: configured tpm, need, estimated, actual,
# ttl ms.  Reserve: need = the estimate, returns {wait in us, amount taken}; correct: need = 0, and the
# amount a reserve of ``estimated`` took is given back, the ``actual`` tokens billed taken.
_TOKENS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h = redis.call('HMGET', KEYS[1], 'level', 'stamp', 'tpm')
local tpm = tonumber(h[3]) or tonumber(ARGV[1])
local rate = tpm / 60.0 / 1000000.0
local cap = math.max(tpm / 60.0, 1.0)
local level = tonumber(h[1]) or cap
local stamp = tonumber(h[2]) or now
level = math.min(cap, level + (now - stamp) * rate)
local need = math.min(math.max(tonumber(ARGV[2]), 0), cap)
local wait = 0
if need > 0 and level < need then wait = (need - level) / rate end
local back = math.min(math.max(tonumber(ARGV[3]), 0), cap) - math.max(tonumber(ARGV[4]), 0)
level = math.min(cap, level - need + back)
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {string.format('%.0f', wait), tostring(need)}
"""


def account_key(prefix: str, settings: PlatformSettings) -> str:
    """``<prefix>:<platform>:<account>``; the account is a hash of base URL and key, never the key."""
    key = settings.api_key.get() if settings.api_key else ""
    digest = hashlib.sha256(f"{settings.base_url or ''}\0{key}".encode()).hexdigest()[:16]
    return f"{prefix}:{settings.name}:{digest}"


class Coordination:
    """One process's link to the other workers' limits: Redis, or the split of each limit by N."""

    def __init__(self, redis_url: str | None, *, workers: int = 1, prefix: str = "prompt-analyzer") -> None:
        self.redis_url = redis_url
        self.workers = max(1, workers)
        self.prefix = prefix
        self.client: aioredis.Redis | None = None
        self.fallback = redis_url is None  # True: limits are split, not shared
        self.limiters: list[SharedRate | SharedTokens] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acquire: Any = None
        self._pause: Any = None
        self._tokens: Any = None

    async def connect(self) -> bool:
        """Reach Redis (True), or say at start that each worker takes its share of each limit."""
        if self.redis_url is None:
            if self.workers > 1:
                log.warning("no [coordination] redis_url: each of the %d workers takes 1/%d of each platform's "
                            "rate and token limits (shared limits need Redis)", self.workers, self.workers,
                            extra={"event": "limits_split"})
            return False
        try:
            self.client = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S,
                decode_responses=True)
            async with asyncio.timeout(_REDIS_TIMEOUT_S * 2):
                await self.client.ping()
            self._acquire = self.client.register_script(_ACQUIRE)
            self._pause = self.client.register_script(_PAUSE)
            self._tokens = self.client.register_script(_TOKENS)
        except (RedisError, OSError, TimeoutError) as e:
            self.lost(e)
            return False
        self.fallback = False
        log.info("rate limits shared through Redis", extra={"event": "limits_shared"})
        return True

    def lost(self, exc: BaseException) -> None:
        """Redis is gone: every limiter of this process takes its share of the limit from now on."""
        if self.fallback:
            return
        self.fallback = True
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("Redis unreachable (%s): each of the %d workers now takes 1/%d of each platform's limits",
                    first[:200], self.workers, self.workers, extra={"event": "limits_split"})

    def set_workers(self, n: int) -> None:
        """The number of live workers changed (a heartbeat's count): re-split the local limits."""
        n = max(1, n)
        if n != self.workers:
            self.workers = n
            for limiter in self.limiters:
                limiter.resplit()

    @property
    def shares(self) -> bool:
        """Whether this process shares its limits (Redis) or splits them (several workers); a lone process
        without Redis keeps its own limiters (engine/pacing.py), which keep their state when a learned
        limit changes them."""
        return self.redis_url is not None or self.workers > 1

    def limits(self, settings: PlatformSettings) -> tuple[RateLimiter, BudgetFactory]:
        """A lane's rate limiter and token-budget factory (what :meth:`Lane.open` takes).  With ``rpm =
        "auto"`` the shared rate starts at ``auto_start_rpm`` and follows what the provider states."""
        key = account_key(self.prefix, settings)
        rate = SharedRate(self, key + ":rate", settings.rpm or settings.auto_start_rpm, ceiling=settings.rpm)
        self.limiters.append(rate)

        def budget(kind: str, tpm: float, ceiling: float | None) -> TokenLimiter:
            tokens = SharedTokens(self, f"{key}:{kind}", int(tpm), ceiling=ceiling)
            self.limiters.append(tokens)
            return tokens

        return rate, budget

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Fire and forget a Redis write (a pause, a learned limit); a failure switches to the split."""
        async def guarded() -> None:
            try:
                async with asyncio.timeout(_REDIS_TIMEOUT_S * 2):
                    await coro
            except (RedisError, OSError, TimeoutError) as e:
                self.lost(e)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            try:
                await self.client.aclose()
            except (RedisError, OSError):
                pass


class SharedRate:
    """A platform's request rate for all workers: the Lua GCRA above, or ``rpm / N`` locally."""

    def __init__(self, coord: Coordination, key: str, rpm: float, *, ceiling: float | None = None) -> None:
        self.coord = coord
        self.key = key
        self.ceiling = ceiling  # the configured rpm: a learned one never exceeds it
        self.configured = rpm
        self.rpm = rpm  # in force: configured, or learned (set_rpm, possibly by another worker)
        self.local = Pacer(rpm / coord.workers)
        self.pauses = 0
        # One slot held at a time by this process, as the local pacer does: a process that the machine
        # stalls then sends one late call, not every call whose reserved slot passed meanwhile (a burst).
        self._lock = asyncio.Lock()

    def resplit(self) -> None:
        """This worker's share of the rate, after the rate or the number of workers changed.  The local
        pacer keeps its schedule and its pause: a new pacer would start with a free slot, and a learned
        limit arrives with every answer."""
        self.local.set_rpm(self.rpm / self.coord.workers)

    async def acquire(self, sleep: Sleep = asyncio.sleep) -> None:
        """Wait for this call's slot in the platform's shared schedule.  ``sleep`` may end early (a
        stop): the slot is then lost, which only slows the platform by one interval."""
        if not self.coord.fallback:
            async with self._lock:
                try:
                    async with asyncio.timeout(_REDIS_TIMEOUT_S * 2):
                        wait_us, rpm = await self.coord._acquire(keys=[self.key],
                                                                 args=[self.configured, _HEADROOM, _KEY_TTL_MS])
                except (RedisError, OSError, TimeoutError) as e:
                    self.coord.lost(e)
                else:
                    learned = float(rpm)
                    if learned != self.rpm:
                        self.rpm = learned
                        self.resplit()
                    wait = int(wait_us) / 1e6
                    if wait > 0:
                        await sleep(wait)
                    return
        await self.local.acquire(sleep)

    def pause(self, seconds: float) -> None:
        """A 429: every caller of the platform, in every worker, waits ``seconds``."""
        self.pauses += 1
        self.local.pause(seconds)
        if not self.coord.fallback:
            self.coord.spawn(self.coord._pause(keys=[self.key], args=[max(0.0, seconds), _KEY_TTL_MS]))

    def set_rpm(self, rpm: float) -> float:
        """A learned limit (the provider's headers): in force for every worker of the account, never above
        the configured rpm; returns the rpm in force."""
        if self.ceiling is not None:
            rpm = min(rpm, self.ceiling)
        self.rpm = rpm
        self.resplit()
        if not self.coord.fallback:
            client = self.coord.client
            assert client is not None
            self.coord.spawn(client.hset(self.key, "rpm", repr(float(rpm))))
        return self.rpm


class SharedTokens:
    """A platform's tokens per minute for all workers: a bucket in a Redis hash, or ``tpm / N`` locally."""

    def __init__(self, coord: Coordination, key: str, tpm: int, *, ceiling: float | None = None) -> None:
        self.coord = coord
        self.key = key
        self.ceiling = ceiling
        self.tpm: float = tpm
        self.local = TokenBudget(max(1, tpm // coord.workers))

    def resplit(self) -> None:
        """This worker's share of the tokens; the bucket keeps what it holds (a new one would start full:
        a burst with every answer that states the limit)."""
        self.local.set_tpm(max(1, self.tpm // self.coord.workers))

    async def reserve(self, tokens: int | float, sleep: Sleep = asyncio.sleep) -> float:
        """Take the call's estimate from the shared bucket and wait for any debt; the amount taken."""
        if not self.coord.fallback:
            try:
                async with asyncio.timeout(_REDIS_TIMEOUT_S * 2):
                    wait_us, taken = await self.coord._tokens(
                        keys=[self.key], args=[self.tpm, max(float(tokens), 0.0), 0, 0, _KEY_TTL_MS])
            except (RedisError, OSError, TimeoutError) as e:
                self.coord.lost(e)
            else:
                wait = int(wait_us) / 1e6
                if wait > 0:
                    await sleep(wait)
                return float(taken)
        return await self.local.reserve(tokens, sleep)

    def correct(self, estimated: int | float, actual: int | float) -> None:
        """Replace the estimate taken with the tokens billed (the bucket may go into debt)."""
        if self.coord.fallback:
            self.local.correct(estimated, actual)
            return
        self.coord.spawn(self.coord._tokens(
            keys=[self.key], args=[self.tpm, 0, float(estimated), float(actual), _KEY_TTL_MS]))

    def set_tpm(self, tpm: float) -> float:
        """A learned token limit, for every worker of the account (never above the configured one)."""
        if self.ceiling is not None:
            tpm = min(tpm, self.ceiling)
        self.tpm = tpm
        self.resplit()
        if not self.coord.fallback:
            client = self.coord.client
            assert client is not None
            self.coord.spawn(client.hset(self.key, "tpm", str(int(tpm))))
        return self.tpm
