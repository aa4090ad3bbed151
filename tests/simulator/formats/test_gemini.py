"""Gemini generateContent (formats/gemini.py) through the real google-genai SDK over HTTP."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import types

from prompt_analyzer.simulator import RunningSimulator
from prompt_analyzer.simulator.content import make_answer
from prompt_analyzer.simulator.formats import gemini as gemini_format

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
    sources = make_answer(PROMPT, "gemini", sim.config.seed).sources
    assert len(gm.grounding_chunks) == len(sources)
    for i, (ch, src) in enumerate(zip(gm.grounding_chunks, sources, strict=True)):
        assert ch.web and ch.web.uri and ch.web.title
        # Links back to the simulator's own redirect endpoint, which names the source's page.
        assert ch.web.uri.startswith(f"{sim.url}/grounding-api-redirect/AUZIYQ")
        assert gemini_format.redirect_target(ch.web.uri.rsplit("/", 1)[1]) == ("ok", src.url)
        # Mostly a bare domain, as Gemini's titles; every third from the second a phrase, as some of its.
        assert ch.web.title == (src.title if i % 3 == 1 else src.domain)
    assert " " in gm.grounding_chunks[1].web.title  # type: ignore[union-attr]
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


async def _links(sim: RunningSimulator, prompt: str) -> list[str]:
    r = await _gemini(sim).aio.models.generate_content(
        model="gemini-2.5-flash", contents=prompt,
        config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]),
    )
    assert r.candidates and r.candidates[0].grounding_metadata
    return [ch.web.uri for ch in r.candidates[0].grounding_metadata.grounding_chunks or [] if ch.web and ch.web.uri]


async def test_grounding_links_redirect_to_their_sources(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    links = await _links(sim, PROMPT)
    sources = make_answer(PROMPT, "gemini", sim.config.seed).sources
    for link, src in zip(links, sources, strict=True):
        for method in ("HEAD", "GET"):
            resp = await http.request(method, link, follow_redirects=False)
            assert resp.status_code == 302 and resp.headers["location"] == src.url
    assert (await sim.stats())["platforms"]["gemini"]["redirects"] == 2 * len(links)
    unknown = await http.head(f"{sim.url}/grounding-api-redirect/AUZIYQnot-ours", follow_redirects=False)
    assert unknown.status_code == 404


@pytest.mark.parametrize(("kind", "status"), [("404", 404), ("500", 500), ("nolocation", 302), ("slow", 302)])
async def test_redirect_marker_breaks_the_first_link(
    sim: RunningSimulator, http: httpx.AsyncClient, kind: str, status: int,
) -> None:
    links = await _links(sim, f"{PROMPT} [[sim:redirect={kind}]]")
    first = await http.head(links[0], follow_redirects=False)
    assert first.status_code == status
    assert ("location" in first.headers) == (kind == "slow")
    for link in links[1:]:
        assert (await http.head(link, follow_redirects=False)).status_code == 302
    assert (await sim.stats())["platforms"]["gemini"][f"redirect:{kind}"] == 1


async def test_hanging_link_never_answers(sim: RunningSimulator) -> None:
    (link, *_) = await _links(sim, f"{PROMPT} [[sim:redirect=hang]]")
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.head(link, follow_redirects=False)
