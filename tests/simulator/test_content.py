"""Simulated answers (content.py): deterministic per prompt, and URLs with the quirks normalisation must handle."""

from __future__ import annotations

import httpx
import openai

from prompt_analyzer.simulator import RunningSimulator

from .sim_helpers import KEYS, raw_request


async def test_answers_are_deterministic(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(base_url=sim.base_urls["openai"], api_key=KEYS["openai"], max_retries=0)
    a = await client.responses.create(model="gpt-4.1-mini", input="best running shoes")
    b = await client.responses.create(model="gpt-4.1-mini", input="best running shoes")
    c = await client.responses.create(model="gpt-4.1-mini", input="best trail shoes")
    assert a.output_text == b.output_text != c.output_text


async def test_url_quirks_for_normalisation(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    """Across a few answers: www. hosts, bare hosts, utm_ params and #fragments all occur."""
    urls: list[str] = []
    for i in range(6):
        url, headers, body = raw_request(sim, "sonar", f"question number {i}")
        urls += (await http.post(url, headers=headers, json=body)).json()["citations"]
    assert any("://www." in u for u in urls) and any("://www." not in u for u in urls)
    assert any("utm_" in u for u in urls) and any("#" in u for u in urls)
