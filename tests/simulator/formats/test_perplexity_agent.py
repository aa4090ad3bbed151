"""Perplexity Agent API (formats/perplexity_agent.py), both paths, over HTTP."""

from __future__ import annotations

import httpx
import pytest

from prompt_analyzer.simulator import RunningSimulator

from ..sim_helpers import PROMPT, raw_request


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
