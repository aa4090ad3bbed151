"""Gemini generateContent (formats/gemini.py) through the real google-genai SDK over HTTP."""

from __future__ import annotations

from google import genai
from google.genai import types

from prompt_analyzer.simulator import RunningSimulator

from ..sim_helpers import KEYS, PROMPT


def _gemini(sim: RunningSimulator, api_version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=sim.base_urls["gemini"], api_version=api_version)
    return genai.Client(api_key=KEYS["gemini"], http_options=options)


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
