"""Every provider module, through its real SDK/HTTP client, against the in-process simulator.

Faults are injected with prompt markers (``[[sim:fault=KIND]]``); each case checks the one error
class the engine will see, its retry hint and its scrubbed message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from prompt_analyzer.config import PlatformSettings
from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    Provider,
    ProviderError,
    ProviderResult,
    RateLimited,
    TransientError,
    make_provider,
)
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator

from .helpers import ALL_SECRETS, KEYS, make_settings

APIS = ("openai", "claude", "gemini", "sonar", "agent")
PLATFORM = {"openai": "openai", "claude": "claude", "gemini": "gemini", "sonar": "perplexity", "agent": "perplexity"}
MODELS = {
    "openai": "gpt-4.1-mini",
    "claude": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash-lite",
    "sonar": "sonar-pro",
    "agent": "openai/gpt-5-mini",  # not in our price table: Perplexity's own cost is what we get
}
PROMPT = "Which project management tools do small agencies recommend?"


@pytest.fixture(scope="module")
async def sim_server() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(SimulatorConfig.for_profile("fast"), host="127.0.0.1", port=0)
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: RunningSimulator) -> RunningSimulator:
    sim_server.set_config(SimulatorConfig.for_profile("fast"))
    await sim_server.reset()
    return sim_server


def settings_for(api: str, sim: RunningSimulator, **changes: Any) -> PlatformSettings:
    name = PLATFORM[api]
    extra: dict[str, Any] = {"api": api} if name == "perplexity" else {}
    return replace(make_settings(name, model=MODELS[api], base_url=sim.base_urls[name], **extra), **changes)


async def ask(api: str, sim: RunningSimulator, prompt: str = PROMPT, **changes: Any) -> ProviderResult:
    provider = make_provider(settings_for(api, sim, **changes), secrets=ALL_SECRETS)
    try:
        return await provider.complete(await provider.ask(prompt))  # as the engine does
    finally:
        await provider.aclose()


async def ask_error(api: str, sim: RunningSimulator, prompt: str, **changes: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await ask(api, sim, prompt, **changes)
    err = info.value
    assert "\n" not in err.message and len(err.message) <= 300
    for key in KEYS.values():
        assert key not in err.message
    assert err.__cause__ is None  # no SDK exception (with its request and headers) chained on
    return err


@pytest.mark.parametrize("api", APIS)
async def test_success(api: str, sim: RunningSimulator) -> None:
    r = await ask(api, sim)
    assert r.text.strip()
    assert r.model_version
    assert r.request_id
    assert r.input_tokens and r.output_tokens and r.total_tokens == r.input_tokens + r.output_tokens
    assert r.latency_ms >= 0
    assert r.citations and any(c.cited for c in r.citations)
    assert [c.position for c in r.citations] == list(range(1, len(r.citations) + 1))
    for c in r.citations:
        assert c.url and c.domain and not c.domain.startswith("www.")
    assert r.metadata["web_search"] is True
    assert r.metadata["searches"] >= (0 if api == "sonar" else 1)
    if api == "agent":
        assert r.cost is None and r.metadata["price_unknown"] is True
        assert Decimal(r.metadata["provider_cost"]) > 0
    else:
        assert isinstance(r.cost, Decimal) and r.cost > 0
        assert "price_unknown" not in r.metadata and "usage_missing" not in r.metadata
    if api == "sonar":
        # Same list prices on both sides: our figure matches Perplexity's own (which it rounds).
        assert r.cost is not None and float(r.cost) == pytest.approx(float(r.metadata["provider_cost"]), rel=1e-3)


@pytest.mark.parametrize("api", APIS)
async def test_without_web_search(api: str, sim: RunningSimulator) -> None:
    r = await ask(api, sim, web_search=False)
    assert r.text.strip()
    assert r.metadata["web_search"] is False
    assert not any(c.cited for c in r.citations)


async def test_perplexity_sonar_and_agent_side_by_side(sim: RunningSimulator) -> None:
    sonar = make_provider(settings_for("sonar", sim), secrets=ALL_SECRETS)
    agent = make_provider(settings_for("agent", sim), secrets=ALL_SECRETS)
    try:
        rs, ra = await asyncio.gather(sonar.ask(PROMPT), agent.ask(PROMPT))
    finally:
        await sonar.aclose()
        await agent.aclose()
    assert rs.metadata["api"] == "sonar" and ra.metadata["api"] == "agent"
    assert rs.citations and ra.citations
    stats = await sim.stats()
    assert stats["platforms"]["perplexity"]["ok"] == 2


@pytest.mark.parametrize("api", APIS)
async def test_rate_limited(api: str, sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast", fault_retry_after_s=2.5))
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=429]]")
    assert isinstance(err, RateLimited) and err.status == 429
    # OpenAI: retry-after-ms; Claude/Perplexity: retry-after (whole seconds); Gemini: RetryInfo in the body.
    assert err.retry_after is not None and 2.5 <= err.retry_after <= 3.0


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", ["500", "503"])
async def test_server_errors_are_transient(api: str, kind: str, sim: RunningSimulator) -> None:
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault={kind}]]")
    assert type(err) is TransientError and err.status == int(kind)
    assert f"HTTP {kind}" in err.message


@pytest.mark.parametrize("api", APIS)
async def test_connection_reset_is_transient(api: str, sim: RunningSimulator) -> None:
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=reset]]")
    assert type(err) is TransientError and err.status is None


@pytest.mark.parametrize("api", APIS)
async def test_hang_times_out_as_transient(api: str, sim: RunningSimulator) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    before = (await sim.stats())["platforms"][PLATFORM[api]]["requests"]
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=hang]]", timeout_s=0.5)
    assert type(err) is TransientError and "timeout" in err.message
    # no hidden SDK retries: one request reached the simulator; bounded by the timeout, not the hang
    assert (await sim.stats())["platforms"][PLATFORM[api]]["requests"] - before == 1
    assert loop.time() - start < 30


@pytest.mark.parametrize("api", APIS)
async def test_malformed_body(api: str, sim: RunningSimulator) -> None:
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=malformed]]")
    assert type(err) is MalformedResponse and err.status == 200


@pytest.mark.parametrize("api", APIS)
async def test_failed_inside_200(api: str, sim: RunningSimulator) -> None:
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=failed]]")
    if api in ("claude", "gemini"):
        # The simulator plays these as a refusal (Claude) and a blocked prompt (Gemini): final.
        assert type(err) is PermanentError
    else:
        assert type(err) is MalformedResponse


@pytest.mark.parametrize("api", APIS)
async def test_injected_401_and_400(api: str, sim: RunningSimulator) -> None:
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=401]]")
    assert type(err) is AuthError and err.status == 401
    err = await ask_error(api, sim, f"{PROMPT} [[sim:fault=400]]")
    assert type(err) is PermanentError and err.status == 400
    assert "Invalid request" in err.message


@pytest.mark.parametrize("api", APIS)
async def test_invalid_key_is_echoed_then_scrubbed(api: str, sim: RunningSimulator) -> None:
    name = PLATFORM[api]
    key = KEYS[name]
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform(name, invalid_keys=(key,)))
    err = await ask_error(api, sim, PROMPT)
    assert type(err) is AuthError and err.status == 401
    assert key not in err.message
    if api in ("openai", "claude", "gemini", "sonar", "agent"):
        assert "***" in err.message  # the echo was there and got scrubbed


@pytest.mark.parametrize("api", APIS)
async def test_fault_times_then_success(api: str, sim: RunningSimulator) -> None:
    prompt = f"{PROMPT} [[sim:fault=500x2]]"
    provider: Provider = make_provider(settings_for(api, sim), secrets=ALL_SECRETS)
    assert isinstance(provider, Provider) and provider.name == PLATFORM[api] and provider.model == MODELS[api]
    try:
        for _ in range(2):
            with pytest.raises(TransientError):
                await provider.ask(prompt)
        r = await provider.ask(prompt)  # the same client recovers: the pool is still usable
    finally:
        await provider.aclose()
    assert r.text


@pytest.mark.parametrize("api", APIS)
async def test_one_megabyte_answer(api: str, sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast", answer_bytes=1_100_000))
    r = await ask(api, sim)
    assert len(r.text.encode("utf-8")) >= 1_000_000
    assert r.raw is not None


@pytest.mark.parametrize("api", APIS)
async def test_concurrent_calls_share_one_pool(api: str, sim: RunningSimulator) -> None:
    provider = make_provider(settings_for(api, sim, max_concurrency=4), secrets=ALL_SECRETS)
    try:
        results = await asyncio.gather(*(provider.ask(f"{PROMPT} #{i}") for i in range(16)))
    finally:
        await provider.aclose()
    assert all(r.text for r in results)
    stats = await sim.stats()
    assert stats["platforms"][PLATFORM[api]]["ok"] == 16
