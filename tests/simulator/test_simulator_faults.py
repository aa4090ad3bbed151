"""Faults on demand: prompt markers (all platforms or one, with xN recovery), config fault_rate, bad keys."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, prompt_hash

from .sim_helpers import APIS, KEYS, PLATFORM_OF, raw_request

STATUS = {"500": 500, "503": 503, "429": 429, "401": 401, "400": 400}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", ["500", "503", "429", "401", "400", "malformed", "failed"])
async def test_marker_fault_every_api(sim: RunningSimulator, http: httpx.AsyncClient, api: str, kind: str) -> None:
    url, headers, body = raw_request(sim, api, f"tell me about tea [[sim:fault={kind}]]")
    r = await http.post(url, headers=headers, json=body)
    if kind in STATUS:
        assert r.status_code == STATUS[kind]
        assert "error" in r.json()
        if kind == "429":
            assert "retry-after" in r.headers or api == "gemini"
    elif kind == "malformed":
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
    else:  # failed: a 200 whose body says it did not work
        assert r.status_code == 200
        j = r.json()
        if api in ("openai", "agent"):
            assert j["status"] == "failed" and j["error"]["message"]
        elif api == "claude":
            assert j["stop_reason"] == "refusal" and j["content"] == []
        elif api == "gemini":
            assert "candidates" not in j and j["promptFeedback"]["blockReason"]
        elif api == "openai-chat":
            choice = j["choices"][0]
            assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
        else:
            assert j["choices"] == []
    stats = await sim.stats()
    assert stats["platforms"][PLATFORM_OF[api]][f"fault:{kind}"] == 1
    assert stats["answered"][PLATFORM_OF[api]] == {}


@pytest.mark.parametrize("api", APIS)
async def test_reset_and_hang(sim: RunningSimulator, http: httpx.AsyncClient, api: str) -> None:
    url, headers, body = raw_request(sim, api, "reset me [[sim:fault=reset]]")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await http.post(url, headers=headers, json=body)
    url, headers, body = raw_request(sim, api, "hang me [[sim:fault=hang]]")
    with pytest.raises(httpx.ReadTimeout):
        await http.post(url, headers=headers, json=body, timeout=0.3)
    counts = (await sim.stats())["platforms"][PLATFORM_OF[api]]
    assert counts["fault:reset"] == 1 and counts["fault:hang"] == 1


async def test_sdk_errors_for_faults(sim: RunningSimulator) -> None:
    oc = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    with pytest.raises(openai.InternalServerError):
        await oc.responses.create(model="gpt-4.1-mini", input="[[sim:fault=500]]")
    with pytest.raises(openai.APIConnectionError):
        await oc.responses.create(model="gpt-4.1-mini", input="[[sim:fault=reset]]")
    with pytest.raises(openai.APITimeoutError):
        await oc.responses.create(model="gpt-4.1-mini", input="[[sim:fault=hang]]", timeout=0.3)
    with pytest.raises(openai.AuthenticationError):
        await oc.responses.create(model="gpt-4.1-mini", input="[[sim:fault=401]]")
    failed = await oc.responses.create(model="gpt-4.1-mini", input="[[sim:fault=failed]]")
    assert failed.status == "failed" and failed.error is not None

    ac = anthropic.AsyncAnthropic(base_url=sim.base_urls["claude"], api_key=KEYS["claude"], max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as ae:
        await ac.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                 messages=[{"role": "user", "content": "[[sim:fault=503]]"}])
    assert ae.value.status_code == 503

    gc = genai.Client(api_key=KEYS["gemini"], http_options=types.HttpOptions(base_url=sim.base_urls["gemini"]))
    with pytest.raises(errors.ServerError) as ge:
        await gc.aio.models.generate_content(model="gemini-2.5-flash", contents="[[sim:fault=500]]")
    assert ge.value.code == 500 and ge.value.status == "INTERNAL"


async def test_platform_marker_and_recovery(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    prompt = "compare laptops [[sim:gemini:fault=503x2]]"
    url, headers, body = raw_request(sim, "openai", prompt)
    assert (await http.post(url, headers=headers, json=body)).status_code == 200  # other platforms unaffected
    url, headers, body = raw_request(sim, "gemini", prompt)
    codes = [(await http.post(url, headers=headers, json=body)).status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]
    stats = await sim.stats()
    assert stats["answered"]["gemini"] == {prompt_hash(prompt): 2}
    assert stats["platforms"]["gemini"]["fault:503"] == 2


async def test_platform_marker_beats_generic(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    prompt = "[[sim:fault=500]] [[sim:claude:fault=400]]"
    url, headers, body = raw_request(sim, "claude", prompt)
    assert (await http.post(url, headers=headers, json=body)).status_code == 400
    url, headers, body = raw_request(sim, "sonar", prompt)
    assert (await http.post(url, headers=headers, json=body)).status_code == 500


async def test_config_fault_rate(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    config = SimulatorConfig.for_profile("fast", seed=7).with_platform(
        "perplexity", fault_rate=0.5, fault_kinds=("500", "failed")
    )
    sim.set_config(config)

    async def run() -> list[int]:
        out = []
        for i in range(40):
            url, headers, body = raw_request(sim, "sonar", f"prompt {i}")
            r = await http.post(url, headers=headers, json=body)
            out.append(r.status_code if r.status_code != 200 or r.json()["choices"] else -1)
        return out

    first = await run()
    assert 8 <= first.count(200) <= 32 and 500 in first and -1 in first
    sim.set_config(config)  # re-seeds: the same sequence again
    assert await run() == first
    sim.set_config(config.with_platform("perplexity", fault_rate=1.0, fault_kinds=("503",)))
    url, headers, body = raw_request(sim, "agent", "always")
    assert (await http.post(url, headers=headers, json=body)).status_code == 503


@pytest.mark.parametrize("api", APIS)
async def test_missing_and_invalid_keys(sim: RunningSimulator, http: httpx.AsyncClient, api: str) -> None:
    url, headers, body = raw_request(sim, api, "hello", key=None)
    r = await http.post(url, headers=headers, json=body)
    assert r.status_code == 401 and "error" in r.json()
    bad = "sk-live-SECRET-do-not-print-0123456789"
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform(PLATFORM_OF[api], invalid_keys=(bad,)))
    url, headers, body = raw_request(sim, api, "hello", key=bad)
    r = await http.post(url, headers=headers, json=body)
    assert r.status_code == 401 and bad in r.text  # echoed, like OpenAI's "Incorrect API key provided"
    url, headers, body = raw_request(sim, api, "hello")
    assert (await http.post(url, headers=headers, json=body)).status_code == 200


async def test_invalid_key_through_sdks(sim: RunningSimulator) -> None:
    bad = "sk-proj-abcdefghijklmnop0123456789"
    config = SimulatorConfig.for_profile("fast")
    for p in ("openai", "claude", "gemini"):
        config = config.with_platform(p, invalid_keys=(bad,))
    sim.set_config(config.with_platform("claude", valid_keys=("sk-ant-only-this-one",)))
    oc = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=bad, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as oe:
        await oc.responses.create(model="gpt-4.1-mini", input="x")
    assert bad in str(oe.value)
    ac = anthropic.AsyncAnthropic(base_url=sim.base_urls["claude"], api_key=KEYS["claude"], max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ae:  # not in valid_keys
        await ac.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert KEYS["claude"] in str(ae.value)
    gc = genai.Client(api_key=bad, http_options=types.HttpOptions(base_url=sim.base_urls["gemini"]))
    with pytest.raises(errors.ClientError) as ge:
        await gc.aio.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert ge.value.code == 401 and bad in (ge.value.message or "")
