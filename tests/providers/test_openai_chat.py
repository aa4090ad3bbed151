"""The OpenAI-compatible Chat Completions client: the real ``openai`` SDK over real HTTP against the simulator
(``sim.base_urls["openai-chat"]``), for each search dialect and each error class the engine acts on.

The platform is built as configuration declares one (``kind = "openai-chat"``, ``search`` its dialect).
No SDK method is patched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx2
import openai
import pytest

from prompt_analyzer.config import PlatformSettings, Secret
from prompt_analyzer.providers import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    ProviderResult,
    RateLimited,
    TransientError,
)
from prompt_analyzer.providers.openai_chat import OpenAIChatProvider, search_dialect
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator

from .helpers import ALL_SECRETS

KEY = "xai-test-0123456789abcdefXYZ"
SECRETS = (*ALL_SECRETS, KEY)
PROMPT = "Which project management tools do small agencies recommend?"
M = Decimal(1_000_000)


def chat_settings(base_url: str | None = "http://127.0.0.1:9/v1", **changes: Any) -> PlatformSettings:
    fields: dict[str, Any] = {
        "name": "grok", "kind": "openai-chat", "model": "grok-4-fast", "base_url": base_url, "api_key": Secret(KEY),
        "max_concurrency": 8, "timeout_s": 30.0,
    }
    return PlatformSettings(**{**fields, **changes})


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


def provider_for(sim: RunningSimulator, **changes: Any) -> OpenAIChatProvider:
    return OpenAIChatProvider(chat_settings(sim.base_urls["openai-chat"], **changes), secrets=SECRETS)


async def ask(sim: RunningSimulator, prompt: str = PROMPT, **changes: Any) -> ProviderResult:
    provider = provider_for(sim, **changes)
    try:
        return await provider.ask(prompt)
    finally:
        await provider.aclose()


async def ask_error(sim: RunningSimulator, prompt: str, **changes: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await ask(sim, prompt, **changes)
    err = info.value
    assert "\n" not in err.message and len(err.message) <= 300 and err.message.startswith("grok")
    assert KEY not in err.message
    assert err.__cause__ is None  # no SDK exception (with its request and headers) chained on
    return err


# ---------------------------------------------------------------- construction and the request


def test_settings_view_and_dialects() -> None:
    assert search_dialect(PlatformSettings(name="grok")) == "none"  # the default: plain chat completions
    assert search_dialect(chat_settings(search="xai")) == "xai"

    class Loose:
        name = "grok"
        search = "bing"

    with pytest.raises(ValueError, match="grok: search must be one of none, openai, xai; got 'bing'"):
        search_dialect(Loose())


async def test_construction_refusals() -> None:
    with pytest.raises(ValueError, match="grok: an OpenAI-compatible platform needs base_url"):
        OpenAIChatProvider(chat_settings(base_url=None))
    with pytest.raises(AuthError):
        OpenAIChatProvider(chat_settings(api_key=None))


async def test_request_per_dialect() -> None:
    cases: list[tuple[str, bool, dict[str, Any]]] = [
        ("none", True, {}),
        ("none", False, {}),
        ("openai", True, {"web_search_options": {}}),
        ("openai", False, {}),
        ("xai", True, {"extra_body": {"search_parameters": {"mode": "auto", "return_citations": True}}}),
        ("xai", False, {}),  # nothing at all, not mode "off"
    ]
    for search, web, extra in cases:
        p = OpenAIChatProvider(chat_settings(search=search, web_search=web, max_tokens=300))
        try:
            assert p.request("hi") == {
                "model": "grok-4-fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300, **extra,
            }, (search, web)
            assert p.searching is (web and search != "none")
        finally:
            await p.aclose()


# ---------------------------------------------------------------- answers over HTTP, per dialect


async def test_plain_chat_completion(sim: RunningSimulator) -> None:
    r = await ask(sim)  # web_search on, search "none": a plain completion all the same
    assert r.text.strip() and "](" not in r.text
    assert r.model_version == "grok-4-fast"
    assert r.request_id and r.request_id.startswith("req_")  # the x-request-id header
    assert r.metadata["response_id"].startswith("chatcmpl-") and r.metadata["finish_reason"] == "stop"
    assert r.input_tokens and r.output_tokens and r.total_tokens == r.input_tokens + r.output_tokens
    assert r.citations == []
    assert r.metadata["web_search"] is False and r.metadata["search"] == "none"
    assert r.cost is None and r.metadata["price_unknown"] is True  # no grok price in the table or config
    assert isinstance(r.raw, dict) and r.raw["object"] == "chat.completion"
    assert (await sim.stats())["platforms"]["openai-chat"]["ok"] == 1


async def test_openai_dialect_cites_annotations(sim: RunningSimulator) -> None:
    r = await ask(sim, search="openai", model="gpt-4o-mini")
    annotations = r.raw["choices"][0]["message"]["annotations"]
    assert annotations and r.metadata["annotations"] == len(annotations)
    urls = {a["url_citation"]["url"] for a in annotations}
    assert len(r.citations) == len(urls) and all(c.cited for c in r.citations)
    assert [c.position for c in r.citations] == list(range(1, len(urls) + 1))
    firsts = sorted({a["url_citation"]["url"]: a["url_citation"]["start_index"] for a in reversed(annotations)}.items(),
                    key=lambda kv: kv[1])
    assert [c.domain for c in r.citations] == [httpx2.URL(u).host.removeprefix("www.") for u, _ in firsts]
    assert all(c.title for c in r.citations)
    assert r.metadata["web_search"] is True and r.metadata["search"] == "openai"
    # gpt-4o-mini's dated version is priced from the table (search fees are not reported: none charged).
    assert r.model_version == "gpt-4o-mini-2024-07-18" and r.metadata["price_model"] == "gpt-4o-mini"
    assert r.input_tokens is not None and r.output_tokens is not None
    assert r.cost == r.input_tokens * Decimal("0.15") / M + r.output_tokens * Decimal("0.60") / M


async def test_xai_dialect_lists_sources_retrieved(sim: RunningSimulator) -> None:
    r = await ask(sim, search="xai")
    listed = r.raw["citations"]
    assert len(listed) >= 4 and r.metadata["listed_citations"] == len(listed)
    assert r.metadata["num_sources_used"] == len(listed)
    # The simulator's Live Search answer neither annotates nor links: every source was only retrieved.
    assert [c.cited for c in r.citations] == [False] * len(listed)
    assert [c.domain for c in r.citations] == [httpx2.URL(u).host.removeprefix("www.") for u in listed]
    assert r.metadata["web_search"] is True and r.metadata["search"] == "xai"


@pytest.mark.parametrize("search", ["openai", "xai"])
async def test_search_off_sends_no_search_parameters(search: str, sim: RunningSimulator) -> None:
    r = await ask(sim, search=search, web_search=False)
    assert r.citations == [] and "citations" not in r.raw
    assert r.raw["choices"][0]["message"]["annotations"] == []
    assert r.metadata["web_search"] is False and r.metadata["search"] == "none"


async def test_configured_prices(sim: RunningSimulator) -> None:
    r = await ask(sim, input_price_per_mtok=Decimal("0.20"), output_price_per_mtok=Decimal("0.50"),
                  request_fee=Decimal("0.001"))
    assert r.metadata["price_model"] == "grok-4-fast" and "price_unknown" not in r.metadata
    assert r.input_tokens is not None and r.output_tokens is not None
    assert r.cost == r.input_tokens * Decimal("0.20") / M + r.output_tokens * Decimal("0.50") / M + Decimal("0.001")


async def test_concurrent_calls_share_one_pool(sim: RunningSimulator) -> None:
    provider = provider_for(sim, max_concurrency=4)
    try:
        results = await asyncio.gather(*(provider.ask(f"{PROMPT} #{i}") for i in range(12)))
    finally:
        await provider.aclose()
    assert all(r.text for r in results)
    assert (await sim.stats())["platforms"]["openai-chat"]["ok"] == 12


async def test_nul_answer_is_kept_as_sent(sim: RunningSimulator) -> None:
    r = await ask(sim, f"{PROMPT} [[sim:openai-chat:fault=nul]]", search="openai")
    assert "\x00" in r.text  # the storage layer decides what to do with it; the parser changes nothing
    assert r.citations and any(c.title and "\x00" in c.title for c in r.citations)


# ---------------------------------------------------------------- errors


async def test_injected_429_carries_the_retry_hint(sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast", fault_retry_after_s=2.5))
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=429]]")
    assert type(err) is RateLimited and err.status == 429
    assert err.retry_after == pytest.approx(2.5)  # retry-after-ms 2500
    assert err.request_id and err.request_id.startswith("req_")


async def test_quota_429_carries_the_retry_hint(sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("openai-chat", rpm=60.0))  # one a second
    provider = provider_for(sim)
    try:
        await provider.ask(PROMPT)
        with pytest.raises(RateLimited) as info:
            await provider.ask(PROMPT)
    finally:
        await provider.aclose()
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 1.0


async def test_invalid_key_is_auth_error_and_scrubbed(sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("openai-chat", invalid_keys=(KEY,)))
    err = await ask_error(sim, PROMPT)
    assert type(err) is AuthError and err.status == 401
    assert "Incorrect API key provided" in err.message and "***" in err.message  # echoed, then scrubbed


async def test_injected_401_and_400(sim: RunningSimulator) -> None:
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=401]]")
    assert type(err) is AuthError and err.status == 401
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=400]]")
    assert type(err) is PermanentError and err.status == 400 and "Invalid request" in err.message


@pytest.mark.parametrize("kind", ["500", "503"])
async def test_server_errors_are_transient(kind: str, sim: RunningSimulator) -> None:
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault={kind}]]")
    assert type(err) is TransientError and err.status == int(kind) and f"HTTP {kind}" in err.message


async def test_reset_and_hang_are_transient(sim: RunningSimulator) -> None:
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=reset]]")
    assert type(err) is TransientError and err.status is None
    loop = asyncio.get_running_loop()
    start = loop.time()
    before = (await sim.stats())["platforms"]["openai-chat"]["requests"]
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=hang]]", timeout_s=0.5)
    assert type(err) is TransientError and "timeout" in err.message
    # no hidden SDK retries: one request reached the simulator; bounded by the timeout, not the hang
    assert (await sim.stats())["platforms"]["openai-chat"]["requests"] - before == 1
    assert loop.time() - start < 30


async def test_malformed_body(sim: RunningSimulator) -> None:
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=malformed]]")
    assert type(err) is MalformedResponse and err.status == 200 and "not JSON" in err.message


async def test_content_filter_is_refused(sim: RunningSimulator) -> None:
    err = await ask_error(sim, f"{PROMPT} [[sim:openai-chat:fault=failed]]")
    assert type(err) is PermanentError and err.status == 200 and "refused" in err.message


async def test_fault_then_recovery_on_the_same_client(sim: RunningSimulator) -> None:
    provider = provider_for(sim)
    prompt = f"{PROMPT} [[sim:openai-chat:fault=500x2]]"
    try:
        for _ in range(2):
            with pytest.raises(TransientError):
                await provider.ask(prompt)
        assert (await provider.ask(prompt)).text
    finally:
        await provider.aclose()


async def test_openai_error_mapping_is_shared() -> None:
    """An out-of-credit 429 is final, as for the openai platform (the same mapping, not a copy)."""
    provider = OpenAIChatProvider(chat_settings())
    try:
        req = httpx2.Request("POST", "https://api.x.ai/v1/chat/completions")
        body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                          "code": "insufficient_quota"}}
        exc = openai.RateLimitError("quota", response=httpx2.Response(429, json=body, request=req), body=body)
        assert type(provider.classify(exc)) is PermanentError
        assert type(provider.classify(openai.APITimeoutError(request=req))) is TransientError
    finally:
        await provider.aclose()


# ---------------------------------------------------------------- the SDK's OpenAI-only environment


async def test_openai_environment_stays_off_the_endpoint(
    sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-should-not-leave")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_should_not_leave")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-openai-elsewhere\nHelicone-Auth: Bearer h-1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/never")
    elsewhere = SimulatorConfig.for_profile("fast").with_platform("openai-chat", invalid_keys=("sk-openai-elsewhere",))
    sim.set_config(elsewhere)
    provider = provider_for(sim)
    try:
        r = await provider.ask(PROMPT)  # our key reached the simulator, not the environment's
        assert r.text
        raw = await provider._client.chat.completions.with_raw_response.create(**provider.request(PROMPT))
        sent = raw.http_response.request.headers
    finally:
        await provider.aclose()
    assert sent["authorization"] == f"Bearer {KEY}"
    for name in ("openai-organization", "openai-project", "helicone-auth"):
        assert name not in sent, name
    assert str(raw.http_response.request.url).startswith(sim.base_urls["openai-chat"])


async def test_replace_keeps_the_view() -> None:
    s = replace(chat_settings(search="xai"), web_search=False)
    assert isinstance(s, PlatformSettings) and s.search == "xai" and s.web_search is False
