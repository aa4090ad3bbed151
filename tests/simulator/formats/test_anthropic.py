"""Anthropic Messages (formats/anthropic.py) through the real anthropic SDK over HTTP."""

from __future__ import annotations

import anthropic
import httpx

from prompt_analyzer.simulator import RunningSimulator

from ..sim_helpers import KEYS, PROMPT, raw_request


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
