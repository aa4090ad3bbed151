"""The official SDKs, over real HTTP, parse the simulator's answers: text, usage, model version, citations."""

from __future__ import annotations

import re

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from prompt_analyzer.simulator import RunningSimulator

from .sim_helpers import KEYS, raw_request

PROMPT = "Which CRM suits a small café — and why?"


def _gemini(sim: RunningSimulator, api_version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=sim.base_urls["gemini"], api_version=api_version)
    return genai.Client(api_key=KEYS["gemini"], http_options=options)


async def test_openai_responses_web_search(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    r = await client.responses.create(model="gpt-4.1-mini", input=PROMPT, tools=[{"type": "web_search"}])
    assert r.status == "completed"
    assert r.model == "gpt-4.1-mini-2025-04-14"
    assert r._request_id and r._request_id.startswith("req_")
    assert r.usage is not None and r.usage.output_tokens > 10
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert [o.type for o in r.output] == ["web_search_call", "message"]
    search = r.output[0]
    assert search.type == "web_search_call" and search.action.type == "search"
    sources = [s.url for s in search.action.sources or []]
    msg = r.output[1]
    assert msg.type == "message"
    part = msg.content[0]
    assert part.type == "output_text"
    text = r.output_text
    assert text == part.text and "café" in text
    cited = [a.url for a in part.annotations if a.type == "url_citation"]
    assert 4 <= len(cited) <= 6
    assert len(set(cited)) == len(cited) - 1  # one source cited twice
    assert set(cited) < set(sources)  # plus one retrieved, never cited
    assert all("utm_source=openai" in u for u in cited)
    for a in part.annotations:
        assert a.type == "url_citation"
        assert text[a.start_index : a.end_index] == f"([{httpx.URL(a.url).host.removeprefix('www.')}]({a.url}))"


async def test_openai_plain_answer_has_no_citations(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    r = await client.responses.create(model="gpt-4o-mini", input=PROMPT)
    assert [o.type for o in r.output] == ["message"]
    assert r.model == "gpt-4o-mini-2024-07-18" and r.output_text
    assert r.output[0].type == "message" and r.output[0].content[0].annotations == []  # type: ignore[union-attr]


async def test_answers_are_deterministic(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    a = await client.responses.create(model="gpt-4.1-mini", input="best running shoes")
    b = await client.responses.create(model="gpt-4.1-mini", input="best running shoes")
    c = await client.responses.create(model="gpt-4.1-mini", input="best trail shoes")
    assert a.output_text == b.output_text != c.output_text


async def test_anthropic_messages_web_search(sim: RunningSimulator) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.base_urls["claude"], api_key=KEYS["claude"], max_retries=0)
    m = await client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=[{"role": "user", "content": PROMPT}],
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    )
    assert m.model == "claude-haiku-4-5-20251001"
    assert m._request_id and m._request_id.startswith("req_")
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 10
    assert m.usage.server_tool_use is not None and m.usage.server_tool_use.web_search_requests == 1
    types_ = [b.type for b in m.content]
    assert types_[:2] == ["server_tool_use", "web_search_tool_result"]
    results = m.content[1]
    assert results.type == "web_search_tool_result" and isinstance(results.content, list)
    retrieved = {r.url for r in results.content}
    assert all(r.encrypted_content and r.page_age for r in results.content)
    cites = [c for b in m.content if b.type == "text" for c in (b.citations or [])]
    assert cites and all(c.type == "web_search_result_location" for c in cites)
    cited = {c.url for c in cites if c.type == "web_search_result_location"}
    assert cited < retrieved  # one retrieved-only result
    text = "".join(b.text for b in m.content if b.type == "text")
    assert "café" in text


async def test_anthropic_requires_max_tokens(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    url, headers, body = raw_request(sim, "claude", PROMPT)
    del body["max_tokens"]
    r = await http.post(url, headers=headers, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error" and "max_tokens" in r.json()["error"]["message"]
    assert r.headers["request-id"].startswith("req_")


async def test_gemini_grounding(sim: RunningSimulator) -> None:
    client = _gemini(sim)
    r = await client.aio.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=PROMPT,
        config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]),
    )
    assert r.model_version == "gemini-2.5-flash-lite" and r.response_id
    text = r.text
    assert text and "café" in text
    u = r.usage_metadata
    assert u is not None and u.prompt_token_count and u.candidates_token_count and u.tool_use_prompt_token_count
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + u.tool_use_prompt_token_count
    assert r.candidates
    gm = r.candidates[0].grounding_metadata
    assert gm is not None and gm.grounding_chunks and gm.grounding_supports and gm.web_search_queries
    for ch in gm.grounding_chunks:
        assert ch.web and ch.web.uri and ch.web.title
        assert ch.web.uri.startswith("https://vertexaisearch.cloud.google.com/grounding-api-redirect/")
        assert "/" not in ch.web.title and not ch.web.title.startswith("www.")
    data = text.encode()
    used: set[int] = set()
    for s in gm.grounding_supports:
        assert s.segment and s.segment.start_index is not None and s.segment.end_index is not None
        assert data[s.segment.start_index : s.segment.end_index].decode() == s.segment.text  # UTF-8 byte offsets
        used.update(s.grounding_chunk_indices or [])
    assert len(used) < len(gm.grounding_chunks)  # a retrieved-only chunk
    # The offsets really are bytes: "’" and "é" come before the later segments.
    last = gm.grounding_supports[-1].segment
    assert last and last.start_index is not None and last.text
    assert text.find(last.text) != last.start_index


async def test_gemini_no_grounding_without_tool(sim: RunningSimulator) -> None:
    r = await _gemini(sim, api_version="v1beta").aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.text and r.candidates and r.candidates[0].grounding_metadata is None
    assert r.usage_metadata and r.usage_metadata.tool_use_prompt_token_count is None


async def test_perplexity_sonar(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    url, headers, body = raw_request(sim, "sonar", PROMPT)
    body["web_search_options"] = {"search_context_size": "medium"}
    r = await http.post(url, headers=headers, json=body)
    assert r.status_code == 200
    j = r.json()
    assert j["object"] == "chat.completion" and j["model"] == "sonar-pro"
    text = j["choices"][0]["message"]["content"]
    refs = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert refs and max(refs) <= len(j["citations"]) and len(refs) < len(j["citations"])
    assert j["citations"] == [s["url"] for s in j["search_results"]]
    assert all({"title", "url", "date", "snippet"} <= s.keys() for s in j["search_results"])
    usage = j["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["num_search_queries"] == 1 and usage["search_context_size"] == "medium"
    cost = usage["cost"]
    assert cost["request_cost"] == pytest.approx(0.01)
    total = cost["input_tokens_cost"] + cost["output_tokens_cost"] + cost["request_cost"]
    assert cost["total_cost"] == pytest.approx(total, abs=1e-6)


@pytest.mark.parametrize("path", ["/v1/agent", "/v1/responses"])
async def test_perplexity_agent(sim: RunningSimulator, http: httpx.AsyncClient, path: str) -> None:
    _, headers, body = raw_request(sim, "agent", PROMPT)
    r = await http.post(sim.base_urls["perplexity"] + path, headers=headers, json=body)
    assert r.status_code == 200
    j = r.json()
    assert j["status"] == "completed" and j["object"] == "response"
    kinds = [o["type"] for o in j["output"]]
    assert kinds == ["search_results", "message"]
    results = j["output"][0]["results"]
    part = j["output"][1]["content"][0]
    text = part["text"]
    for a in part["annotations"]:
        assert a["type"] == "url_citation"
        n = int(text[a["start_index"] : a["end_index"]].strip("[]"))
        assert results[n - 1]["url"] == a["url"]
    assert {a["url"] for a in part["annotations"]} < {x["url"] for x in results}
    cost = j["usage"]["cost"]
    assert cost["total_cost"] == pytest.approx(cost["input_cost"] + cost["output_cost"] + cost["tool_calls_cost"])


async def test_agent_without_search_tool_has_no_results(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    url, headers, body = raw_request(sim, "agent", PROMPT, search=False)
    j = (await http.post(url, headers=headers, json=body)).json()
    assert [o["type"] for o in j["output"]] == ["message"]


async def test_url_quirks_for_normalisation(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    """Across a few answers: www. hosts, bare hosts, utm_ params and #fragments all occur."""
    urls: list[str] = []
    for i in range(6):
        url, headers, body = raw_request(sim, "sonar", f"question number {i}")
        urls += (await http.post(url, headers=headers, json=body)).json()["citations"]
    assert any("://www." in u for u in urls) and any("://www." not in u for u in urls)
    assert any("utm_" in u for u in urls) and any("#" in u for u in urls)
