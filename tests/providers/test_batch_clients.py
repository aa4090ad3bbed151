"""The three batch clients, through their real SDKs, against the simulator's batch APIs over real HTTP:
submit, poll, orphan lookup, results classified as live answers and errors are, batch prices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from prompt_analyzer.providers import PermanentError, TransientError
from prompt_analyzer.providers.batch import BatchClient, BatchItem, RemoteBatch, batch_support, make_batch_client
from prompt_analyzer.providers.pricing import compute_cost, price_for
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator
from prompt_analyzer.statuses import ProviderBatchState

from .helpers import ALL_SECRETS, make_settings

PLATFORMS = ("openai", "claude", "gemini")


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    s = await start_simulator(SimulatorConfig.for_profile("fast"))
    yield s
    await s.stop()


@pytest.fixture
async def client(sim: RunningSimulator, request: pytest.FixtureRequest) -> AsyncIterator[BatchClient]:
    name = request.param
    c = make_batch_client(make_settings(name, base_url=sim.base_urls[name]), secrets=ALL_SECRETS)
    yield c
    await c.aclose()


async def _ended(client: BatchClient, remote: RemoteBatch) -> RemoteBatch:
    for _ in range(200):  # bounded: the simulator's jobs take batch_processing_s (0.2 s here)
        remote = await client.retrieve(remote.id)
        if remote.state is not ProviderBatchState.IN_PROGRESS:
            return remote
        await asyncio.sleep(0.05)
    raise AssertionError("the batch did not end")


async def _items(client: BatchClient, remote: RemoteBatch) -> dict[str, BatchItem]:
    return {item.custom_id: item async for item in client.results(remote)}


def test_which_platforms_have_a_batch_api() -> None:
    for name in PLATFORMS:
        assert batch_support(make_settings(name)) is None
    assert batch_support(make_settings("perplexity")) == "perplexity has no batch API"


@pytest.mark.parametrize("client", PLATFORMS, indirect=True)
async def test_submit_poll_and_results_like_live_answers(sim: RunningSimulator, client: BatchClient) -> None:
    sim.set_config(replace(sim.config, batch_processing_s=0.2))
    prompts = {"a1": "best crm for a startup", "a2": "flaky [[sim:fault=503]]", "a3": "refused [[sim:fault=400]]"}
    remote = await client.submit("label-1", [client.encode(cid, p) for cid, p in prompts.items()])
    assert remote.state is ProviderBatchState.IN_PROGRESS and remote.id
    remote = await _ended(client, remote)
    assert remote.state is ProviderBatchState.ENDED
    items = await _items(client, remote)
    assert set(items) == set(prompts)
    ok = items["a1"].result
    assert ok is not None and ok.text and ok.citations and ok.metadata["batch"] is True
    price = price_for(make_settings(client.name), ok.model_version, batch=True)
    assert ok.cost == compute_cost(price, input_tokens=ok.input_tokens, output_tokens=ok.output_tokens,
                                   searches=ok.metadata["searches"])
    live_price = price_for(make_settings(client.name), ok.model_version)
    assert price is not None and live_price is not None
    assert price.input_per_mtok == live_price.input_per_mtok / 2 and price.search_fee == live_price.search_fee
    # per-request errors are classified as the live call's would be: a 503 is retried, a 400 is not
    assert isinstance(items["a2"].error, TransientError) and items["a2"].error.retryable
    assert isinstance(items["a3"].error, PermanentError) and not items["a3"].error.retryable
    assert (await sim.stats())["platforms"][client.name]["batch_creates"] == 1


@pytest.mark.parametrize("client", PLATFORMS, indirect=True)
async def test_an_orphan_is_found_again_and_only_ours(sim: RunningSimulator, client: BatchClient) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    mine = await client.submit("mine", [client.encode("m1", "one"), client.encode("m2", "two")])
    other = await client.submit("other", [client.encode("o1", "three")])
    found = await client.find("mine", since, ["m1", "m2"], ())
    assert found is not None and found.id == mine.id
    # nothing submitted under a label (and, for Anthropic, no unknown batch of that size): None
    assert await client.find("never-submitted", since, ["x1", "x2", "x3", "x4"], ()) is None
    # Anthropic keeps no label: a batch we already recorded is never taken for the orphan
    if client.provider == "anthropic":
        assert await client.find("mine", since, ["m1", "m2"], {mine.id}) is None
        assert (await client.find("other", since, ["o1"], ())).id == other.id  # type: ignore[union-attr]


@pytest.mark.parametrize("client", PLATFORMS, indirect=True)
async def test_expired_batches_return_what_they_reached(sim: RunningSimulator, client: BatchClient) -> None:
    sim.set_config(replace(sim.config, batch_processing_s=3600.0, batch_expire_after_s=0.1))
    remote = await client.submit("exp", [client.encode(f"e{i}", f"prompt {i}") for i in range(3)])
    remote = await _ended(client, remote)
    assert remote.state is ProviderBatchState.EXPIRED
    items = await _items(client, remote)
    # none reached in 0.1 s of an hour: OpenAI and Anthropic list them as expired, Gemini lists nothing
    assert len(items) == (0 if client.provider == "gemini" else 3)
    assert all(i.unprocessed for i in items.values())
