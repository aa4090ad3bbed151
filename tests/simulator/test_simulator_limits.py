"""Quotas are enforced over sub-minute windows: a burst of twice the per-second quota gets 429s with hints."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from prompt_analyzer.simulator import SIM_PLATFORMS, RunningSimulator, SimulatorConfig
from prompt_analyzer.simulator.ratelimit import TokenBucket

from .sim_helpers import APIS, KEYS, PLATFORM_OF, raw_request

RPM = 240.0  # 4 per second: bucket of 4, refill every 250 ms


def _limited(sim: RunningSimulator, **fields: Any) -> None:
    config = SimulatorConfig.for_profile("fast")
    for p in SIM_PLATFORMS:
        config = config.with_platform(p, **fields)
    sim.set_config(config)


def test_token_bucket_sub_minute_window() -> None:
    b = TokenBucket(120, now=0.0)  # 2/s, holds 2
    assert b.capacity == 2
    for _ in range(2):
        assert b.wait_for(1, 0.0) == 0
        b.take(1)
    assert b.wait_for(1, 0.0) == pytest.approx(0.5)
    assert b.wait_for(1, 0.5) == 0
    small = TokenBucket(6, now=0.0)  # 0.1/s: capacity is one request, not a tenth
    assert small.capacity == 1


@pytest.mark.parametrize("api", APIS)
async def test_burst_gets_429_with_retry_hint(sim: RunningSimulator, http: httpx.AsyncClient, api: str) -> None:
    _limited(sim, rpm=RPM)
    url, headers, body = raw_request(sim, api, "burst prompt")
    replies = await asyncio.gather(*(http.post(url, headers=headers, json=body) for _ in range(8)))
    codes = [r.status_code for r in replies]
    ok = codes.count(200)
    assert ok in (4, 5) and codes.count(429) == 8 - ok  # 5: a token refilled mid-burst on a slow machine
    r = next(r for r in replies if r.status_code == 429)
    if api == "gemini":
        err = r.json()["error"]
        assert err["status"] == "RESOURCE_EXHAUSTED" and err["code"] == 429
        delay = next(d["retryDelay"] for d in err["details"] if d["@type"].endswith("google.rpc.RetryInfo"))
        assert re.fullmatch(r"\d+(\.\d+)?s", delay) and 0 < float(delay[:-1]) <= 0.25
    else:
        assert int(r.headers["retry-after"]) == 1
    if api in ("openai", "openai-chat"):
        assert 0 < int(r.headers["retry-after-ms"]) <= 250
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert r.headers["x-ratelimit-limit-requests"] == "240"
    if api == "claude":
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert r.headers["anthropic-ratelimit-requests-limit"] == "240"
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    stats = await sim.stats()
    assert stats["platforms"][PLATFORM_OF[api]]["429"] == 8 - ok
    await asyncio.sleep(0.26)  # one token back
    assert (await http.post(url, headers=headers, json=body)).status_code == 200


async def test_success_carries_openai_ratelimit_headers(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    _limited(sim, rpm=RPM, tpm=100_000)
    url, headers, body = raw_request(sim, "openai", "headers please")
    r = await http.post(url, headers=headers, json=body)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-limit-requests"] == "240"
    assert r.headers["x-ratelimit-remaining-requests"] == "3"
    assert r.headers["x-ratelimit-reset-requests"].endswith("ms")
    assert r.headers["x-ratelimit-limit-tokens"] == "100000"


async def test_tpm_limit(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    _limited(sim, tpm=6000)  # 100 tokens a second; each answer is estimated at 150+ tokens
    url, headers, body = raw_request(sim, "openai", "token heavy")
    first = await http.post(url, headers=headers, json=body)
    second = await http.post(url, headers=headers, json=body)
    assert first.status_code == 200 and second.status_code == 429
    assert second.json()["error"]["type"] == "tokens" and "TPM" in second.json()["error"]["message"]


async def test_sdks_raise_rate_limit_errors(sim: RunningSimulator) -> None:
    _limited(sim, rpm=60.0)  # one a second
    oc = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    await oc.responses.create(model="gpt-4.1-mini", input="x")
    with pytest.raises(openai.RateLimitError) as oe:
        await oc.responses.create(model="gpt-4.1-mini", input="x")
    assert oe.value.status_code == 429 and oe.value.response.headers["retry-after-ms"]
    assert oe.value.request_id and oe.value.request_id.startswith("req_")

    ac = anthropic.AsyncAnthropic(base_url=sim.base_urls["claude"], api_key=KEYS["claude"], max_retries=0)
    msgs: Any = [{"role": "user", "content": "x"}]
    await ac.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=msgs)
    with pytest.raises(anthropic.RateLimitError) as ae:
        await ac.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=msgs)
    assert ae.value.response.headers["retry-after"] == "1"
    assert ae.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    gc = genai.Client(api_key=KEYS["gemini"], http_options=types.HttpOptions(base_url=sim.base_urls["gemini"]))
    cfg = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    await gc.aio.models.generate_content(model="gemini-2.5-flash", contents="x", config=cfg)
    with pytest.raises(errors.ClientError) as ge:
        await gc.aio.models.generate_content(model="gemini-2.5-flash", contents="x", config=cfg)
    assert ge.value.code == 429 and ge.value.status == "RESOURCE_EXHAUSTED"
    details = ge.value.details["error"]["details"]
    retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry and retry[0]["retryDelay"].endswith("s")
