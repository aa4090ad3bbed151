"""OpenAI Responses (formats/openai_responses.py) through the real openai SDK over HTTP."""

from __future__ import annotations

import httpx
import openai

from prompt_analyzer.simulator import RunningSimulator

from ..sim_helpers import KEYS, PROMPT


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
