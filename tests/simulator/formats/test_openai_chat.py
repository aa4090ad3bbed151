"""OpenAI-compatible Chat Completions (formats/openai_chat.py) through the real openai SDK over HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig

from ..sim_helpers import KEYS, PROMPT, raw_request

MESSAGES: list[dict[str, str]] = [{"role": "user", "content": PROMPT}]


def _client(sim: RunningSimulator, key: str = KEYS["openai-chat"]) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_urls["openai-chat"], api_key=key, max_retries=0)


async def test_plain_answer(sim: RunningSimulator) -> None:
    r = await _client(sim).chat.completions.create(model="grok-4-fast", messages=MESSAGES, max_tokens=400)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "grok-4-fast"  # an unknown (non-OpenAI) model is echoed as sent
    assert r._request_id and r._request_id.startswith("req_")
    choice = r.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and "café" in choice.message.content
    assert choice.message.annotations == []
    assert "](" not in choice.message.content and "[1]" not in choice.message.content  # no citation marks
    u = r.usage
    assert u is not None and u.prompt_tokens > 0 and u.completion_tokens > 10
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert (r.model_extra or {}).get("citations") is None
    stats = await sim.stats()
    assert stats["platforms"]["openai-chat"]["ok"] == 1 and stats["platforms"]["openai"]["requests"] == 0


async def test_openai_model_names_come_back_dated(sim: RunningSimulator) -> None:
    r = await _client(sim).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.model == "gpt-4o-mini-2024-07-18"


async def test_web_search_options_give_url_citation_annotations(sim: RunningSimulator) -> None:
    r = await _client(sim).chat.completions.create(
        model="gpt-4o-mini-search-preview", messages=MESSAGES,
        web_search_options={"search_context_size": "low"},
    )
    msg = r.choices[0].message
    text = msg.content
    assert text and "café" in text
    assert msg.annotations and 4 <= len(msg.annotations) <= 6
    cited = []
    for a in msg.annotations:
        assert a.type == "url_citation"
        c = a.url_citation
        assert c.title and c.url.startswith("https://")
        host = httpx.URL(c.url).host.removeprefix("www.")
        assert text[c.start_index : c.end_index] == f"([{host}]({c.url}))"  # the span is the inline link
        cited.append(c.url)
    assert len(set(cited)) == len(cited) - 1  # one source cited twice
    assert (r.model_extra or {}).get("citations") is None  # OpenAI's spelling has no top-level list


async def test_search_parameters_give_a_citations_list(sim: RunningSimulator) -> None:
    client = _client(sim)
    r = await client.chat.completions.create(
        model="grok-4-fast", messages=MESSAGES,
        extra_body={"search_parameters": {"mode": "auto"}},
    )
    citations = (r.model_extra or {})["citations"]
    assert isinstance(citations, list) and len(citations) >= 4 and all(u.startswith("https://") for u in citations)
    assert r.choices[0].message.annotations == []
    assert r.usage is not None and (r.usage.model_extra or {})["num_sources_used"] == len(citations)
    # Both spellings at once: annotations for what is cited, the list for everything consulted.
    both = await client.chat.completions.create(
        model="grok-4-fast", messages=MESSAGES,
        web_search_options={}, extra_body={"search_parameters": {"mode": "on"}},
    )
    listed = (both.model_extra or {})["citations"]
    annotated = {a.url_citation.url for a in both.choices[0].message.annotations or []}
    assert annotated < set(listed)  # one source consulted but never cited
    off = await client.chat.completions.create(
        model="grok-4-fast", messages=MESSAGES,
        extra_body={"search_parameters": {"mode": "off"}},
    )
    assert (off.model_extra or {}).get("citations") is None
    quiet = await client.chat.completions.create(
        model="grok-4-fast", messages=MESSAGES,
        extra_body={"search_parameters": {"mode": "on", "return_citations": False}},
    )
    assert (quiet.model_extra or {}).get("citations") is None


async def test_rate_limit_error_carries_retry_headers(sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("openai-chat", rpm=60.0))  # one a second
    client = _client(sim)
    await client.chat.completions.create(model="grok-4-fast", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as e:
        await client.chat.completions.create(model="grok-4-fast", messages=MESSAGES)
    err = e.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    assert 0 < int(err.response.headers["retry-after-ms"]) <= 1000 and err.response.headers["retry-after"] == "1"
    assert err.response.headers["x-ratelimit-limit-requests"] == "60"
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.request_id and err.request_id.startswith("req_")
    assert (await sim.stats())["platforms"]["openai-chat"]["429"] == 1


async def test_invalid_key_is_an_authentication_error(sim: RunningSimulator) -> None:
    bad = "xai-SECRET-do-not-print-0123456789"
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("openai-chat", invalid_keys=(bad,)))
    with pytest.raises(openai.AuthenticationError) as e:
        await _client(sim, bad).chat.completions.create(model="grok-4-fast", messages=MESSAGES)
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key" and bad in str(e.value)


async def test_fault_markers(sim: RunningSimulator) -> None:
    client = _client(sim)
    with pytest.raises(openai.InternalServerError) as e:
        await client.chat.completions.create(
            model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=500]]"}],
        )
    assert e.value.status_code == 500
    # A marker for the openai platform is not one for openai-chat (and the reverse).
    prompt = "tea [[sim:openai:fault=503]]"
    ok = await client.chat.completions.create(model="grok-4-fast", messages=[{"role": "user", "content": prompt}])
    assert ok.choices[0].message.content
    oc = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    with pytest.raises(openai.InternalServerError):
        await oc.responses.create(model="gpt-4.1-mini", input=prompt)
    with pytest.raises(openai.RateLimitError) as rl:
        await client.chat.completions.create(
            model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=429x1]]"}],
        )
    assert rl.value.response.headers["retry-after-ms"] == "1000"  # the injected hint (fault_retry_after_s)
    again = await client.chat.completions.create(
        model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=429x1]]"}],
    )
    assert again.choices[0].finish_reason == "stop"
    filtered = await client.chat.completions.create(
        model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=failed]]"}],
    )
    assert filtered.choices[0].finish_reason == "content_filter" and filtered.choices[0].message.content is None
    counts = (await sim.stats())["platforms"]["openai-chat"]
    assert counts["fault:500"] == 1 and counts["fault:429"] == 1 and counts["fault:failed"] == 1


async def test_hostile_faults_reach_chat_bodies(sim: RunningSimulator) -> None:
    client = _client(sim)
    r = await client.chat.completions.create(
        model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=nul]]"}],
        web_search_options={},
    )
    msg = r.choices[0].message
    assert msg.content and "\x00" in msg.content
    assert msg.annotations and all("\x00" in a.url_citation.title for a in msg.annotations)
    huge = await client.chat.completions.create(
        model="grok-4-fast", messages=[{"role": "user", "content": "tea [[sim:openai-chat:fault=hugeusage]]"}],
    )
    assert huge.usage is not None and huge.usage.total_tokens == 2**40


async def test_bad_requests(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    client = _client(sim)
    with pytest.raises(openai.BadRequestError) as e:
        await client.chat.completions.create(model="grok-4-fast", messages=[])
    assert e.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as e:
        await client.chat.completions.create(
            model="grok-4-fast", messages=MESSAGES, web_search_options={"search_context_size": "huge"},
        )
    assert e.value.param == "web_search_options.search_context_size"
    url, headers, body = raw_request(sim, "openai-chat", PROMPT)
    for bad in ({"max_tokens": 0}, {"stream": True}, {"search_parameters": "on"}, {"search_parameters": {"mode": "x"}}):
        r = await http.post(url, headers=headers, json={**body, **bad})
        assert r.status_code == 400, bad
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await http.post(url, headers={}, json=body)
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
