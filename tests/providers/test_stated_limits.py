"""The limits each provider states, read through its real SDK over HTTP from the simulator, on answers,
on 429s and on the models list (what `analyze doctor` checks a key with)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from prompt_analyzer.providers import AuthError, RateLimited, make_provider
from prompt_analyzer.providers.base import BaseProvider
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator

from .helpers import ALL_SECRETS, make_settings

PROMPT = "Which standing desks do remote teams recommend?"


@pytest.fixture(scope="module")
async def sim_server() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(SimulatorConfig.for_profile("fast"))
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: RunningSimulator) -> RunningSimulator:
    cfg = SimulatorConfig.for_profile("fast")
    cfg = cfg.with_platform("openai", rpm=5000.0, tpm=2_000_000)
    cfg = cfg.with_platform("claude", rpm=4000.0, input_tpm=400_000, output_tpm=80_000)
    cfg = cfg.with_platform("gemini", rpm=1.0)
    sim_server.set_config(cfg)
    await sim_server.reset()
    return sim_server


def provider(name: str, sim: RunningSimulator, **changes: object) -> BaseProvider:
    p = make_provider(replace(make_settings(name, base_url=sim.base_urls[name]), **changes), secrets=ALL_SECRETS)
    assert isinstance(p, BaseProvider)
    return p


async def test_openai_answer_states_requests_and_tokens(sim: RunningSimulator) -> None:
    p = provider("openai", sim)
    try:
        r = await p.ask(PROMPT)
    finally:
        await p.aclose()
    assert r.limits is not None and (r.limits.rpm, r.limits.tpm) == (5000, 2_000_000)
    assert r.limits.requests_remaining is not None and r.limits.requests_reset_s is not None


async def test_anthropic_answer_states_input_and_output_limits(sim: RunningSimulator) -> None:
    p = provider("claude", sim)
    try:
        r = await p.ask(PROMPT)
    finally:
        await p.aclose()
    assert r.limits is not None
    assert (r.limits.rpm, r.limits.input_tpm, r.limits.output_tpm) == (4000, 400_000, 80_000)


async def test_gemini_states_nothing_but_its_429_names_the_quota(sim: RunningSimulator) -> None:
    p = provider("gemini", sim)
    try:
        first = await p.ask(PROMPT)
        assert first.limits is None
        with pytest.raises(RateLimited) as info:
            await p.ask(PROMPT)  # rpm 1: the second call within the minute is refused
    finally:
        await p.aclose()
    assert info.value.limits is not None and info.value.limits.rpm == 1


@pytest.mark.parametrize("name", ["openai", "claude", "gemini", "perplexity"])
async def test_models_list_checks_the_key(name: str, sim: RunningSimulator) -> None:
    p = provider(name, sim)
    try:
        listed = await p.list_models()
    finally:
        await p.aclose()
    assert p.settings.model in listed.models
    if name == "openai":
        assert listed.limits is not None and listed.limits.rpm == 5000
    if name == "claude":
        assert listed.limits is not None and listed.limits.output_tpm == 80_000
    if name in ("gemini", "perplexity"):
        assert listed.limits is None
    assert (await sim.stats())["platforms"][name if name != "perplexity" else "perplexity"]["requests"] == 0


@pytest.mark.parametrize("name", ["openai", "claude", "gemini", "perplexity"])
async def test_models_list_refuses_a_bad_key(name: str, sim: RunningSimulator) -> None:
    p = provider(name, sim)
    sim.set_config(sim.config.with_platform(name, invalid_keys=(p._key,)))
    try:
        with pytest.raises(AuthError) as info:
            await p.list_models()
    finally:
        await p.aclose()
    assert p._key not in info.value.message
