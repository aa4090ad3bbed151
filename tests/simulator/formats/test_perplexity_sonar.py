"""Perplexity Sonar chat completions (formats/perplexity_sonar.py) over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from prompt_analyzer.simulator import RunningSimulator

from ..sim_helpers import PROMPT, raw_request


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
