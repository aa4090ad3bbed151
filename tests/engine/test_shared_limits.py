"""Limits shared by several workers through the real Redis on 127.0.0.1:6379 (keys under a prefix of
each test's own), and the split of each limit when Redis is absent or lost.  Time is only ever
checked from below: a loaded machine makes waits longer, never shorter."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from prompt_analyzer.config import PlatformSettings, Secret
from prompt_analyzer.engine.shared_limits import Coordination, SharedRate, SharedTokens, account_key

REDIS_URL = os.environ.get("PROMPT_ANALYZER_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


def _settings(rpm: float = 600.0, tpm: int | None = None, key: str = "sk-test-shared") -> PlatformSettings:
    return PlatformSettings(name="openai", rpm=rpm, tpm=tpm, api_key=Secret(key), base_url="http://sim/v1")


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"pa-test-{uuid.uuid4().hex[:12]}"
    yield p
    client = redis.Redis.from_url(REDIS_URL)
    for k in client.scan_iter(f"{p}:*"):
        client.delete(k)
    client.close()


async def _coord(prefix: str, *, workers: int = 1, url: str | None = REDIS_URL) -> Coordination:
    c = Coordination(url, workers=workers, prefix=prefix)
    await c.connect()
    return c


async def _until(cond: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _children(url: str, prefix: str, rpm: float, count: int, n: int) -> tuple[float, list[dict[str, object]]]:
    """Start n processes, let them acquire together; (the start moment, each one's report)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.engine.limits_child", url, prefix, str(rpm), str(count),
                               str(n)], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        start = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return start, reports


def test_shared_rate_spaces_calls_across_processes(prefix: str) -> None:
    """Three processes, one limit of 3,000 rpm: their 60 calls together take at least 59 intervals
    (without sharing, three times the rate would let them through in a third of that)."""
    start, reports = _children(REDIS_URL, prefix, 3000.0, 20, 3)
    assert all(r["shared"] for r in reports)
    grants = sorted(g for r in reports for g in r["grants"])  # type: ignore[attr-defined]
    assert len(grants) == 60
    interval = 60.0 / 3000.0
    assert grants[-1] - start >= 59 * interval * 0.99


def test_without_redis_each_process_takes_its_share(prefix: str) -> None:
    """No Redis: each of 3 processes takes 1/3 of 3,000 rpm, so each one's 20 calls span 19 of its
    own (three times longer) intervals."""
    start, reports = _children("", prefix, 3000.0, 20, 3)
    for r in reports:
        assert r["shared"] is False
        assert max(r["grants"]) - start >= 19 * (60.0 / 1000.0) * 0.99  # type: ignore[arg-type]


async def test_a_429_pauses_every_worker(prefix: str) -> None:
    a, b = await _coord(prefix), await _coord(prefix)
    try:
        ra, _ = a.limits(_settings())
        rb, _ = b.limits(_settings())
        assert isinstance(ra, SharedRate)
        ra.pause(1.0)
        client = redis.Redis.from_url(REDIS_URL)
        await _until(lambda: client.hget(ra.key, "paused") is not None)
        client.close()
        t0 = time.monotonic()
        await rb.acquire()
        assert time.monotonic() - t0 >= 0.8  # the pause was set at most ~0.2 s before
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_learned_rpm_reaches_every_worker(prefix: str) -> None:
    a, b = await _coord(prefix), await _coord(prefix)
    try:
        ra, _ = a.limits(_settings(rpm=600))
        rb, _ = b.limits(_settings(rpm=600))
        assert isinstance(ra, SharedRate) and isinstance(rb, SharedRate)
        ra.set_rpm(120.0)
        assert ra.rpm == 120.0
        client = redis.Redis.from_url(REDIS_URL)
        await _until(lambda: client.hget(ra.key, "rpm") is not None)
        client.close()
        await rb.acquire()
        assert rb.rpm == 120.0
    finally:
        await a.aclose()
        await b.aclose()


async def test_token_budget_is_shared(prefix: str) -> None:
    """6,000 tpm: a bucket of 100 tokens refilled at 100/s.  One worker takes it all; the other's 50
    tokens come only after half a second."""
    a, b = await _coord(prefix), await _coord(prefix)
    try:
        _, budget_a = a.limits(_settings(tpm=6000))
        _, budget_b = b.limits(_settings(tpm=6000))
        ta, tb = budget_a("tokens", 6000, 6000), budget_b("tokens", 6000, 6000)
        assert isinstance(ta, SharedTokens) and isinstance(tb, SharedTokens)
        assert await ta.reserve(100) == 100.0
        t0 = time.monotonic()
        assert await tb.reserve(50) == 50.0
        assert time.monotonic() - t0 >= 0.45
        # A correction gives back what the estimate took beyond the tokens billed.
        ta.correct(100, 0)
        client = redis.Redis.from_url(REDIS_URL)
        await _until(lambda: float(client.hget(ta.key, "level") or 0) > 40)
        client.close()
    finally:
        await a.aclose()
        await b.aclose()


def test_accounts_are_hashed_never_the_key() -> None:
    one = account_key("p", _settings(key="sk-secret-one"))
    assert "sk-secret-one" not in one and one.startswith("p:openai:")
    assert one != account_key("p", _settings(key="sk-secret-two"))
    other_url = PlatformSettings(name="openai", api_key=Secret("sk-secret-one"), base_url="http://elsewhere/v1")
    assert one != account_key("p", other_url)


async def test_no_redis_says_so_and_splits(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="prompt_analyzer.engine"):
        c = await _coord(prefix, workers=4, url=None)
    assert "each of the 4 workers takes 1/4" in caplog.text
    rate, _ = c.limits(_settings(rpm=600))
    assert isinstance(rate, SharedRate) and rate.local.rpm == 150.0
    c.set_workers(2)  # a heartbeat counted two live workers
    assert rate.local.rpm == 300.0


async def test_redis_lost_mid_run_falls_back_to_the_split(
    own_redis: tuple[asyncio.subprocess.Process, str], prefix: str, caplog: pytest.LogCaptureFixture,
) -> None:
    proc, url = own_redis
    c = await _coord(prefix, workers=2, url=url)
    rate, budget = c.limits(_settings(rpm=6000, tpm=600_000))
    tokens = budget("tokens", 600_000, 600_000)
    assert isinstance(rate, SharedRate)
    await rate.acquire()
    assert not c.fallback
    proc.kill()
    await proc.wait()
    with caplog.at_level(logging.WARNING, logger="prompt_analyzer.engine"):
        for _ in range(5):
            await rate.acquire()  # no error: the local split takes over
        assert tokens is not None and await tokens.reserve(10) == 10.0
        rate.pause(0.01)
    assert c.fallback
    assert rate.local.rpm == 3000.0
    assert caplog.text.count("Redis unreachable") == 1
    await c.aclose()


async def test_the_split_keeps_its_state_when_each_answer_states_the_limit(prefix: str) -> None:
    """Every answer restates the provider's limits: the split pacer and bucket must keep their schedule
    and their level, not start afresh (a free slot and a full bucket with every answer: a burst)."""
    c = await _coord(prefix, workers=2, url=None)
    rate, budget = c.limits(_settings(rpm=60, tpm=1200))
    tokens = budget("tokens", 1200, 1200)
    assert isinstance(rate, SharedRate) and isinstance(tokens, SharedTokens)
    waits: list[float] = []

    async def sleep(s: float) -> bool:  # records the wait instead of sleeping it (as a halted lane's)
        waits.append(s)
        return False

    await rate.acquire(sleep)  # this worker's first slot; the next is 2 s later (60 rpm / 2 workers)
    rate.set_rpm(60)  # an answer states the same limit
    await rate.acquire(sleep)
    assert waits and waits[-1] > 1.5, waits

    waits.clear()
    # the worker's share is 1200 / 2 tpm: 10 tokens a second, a bucket of one second's worth
    assert await tokens.reserve(10, sleep) == 10 and not waits
    tokens.set_tpm(1200)  # an answer states the same limit
    await tokens.reserve(10, sleep)
    assert waits and waits[0] > 0.5, waits  # the bucket was emptied, not refilled by the statement
    await c.aclose()
