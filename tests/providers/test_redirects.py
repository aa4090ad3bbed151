"""Gemini grounding redirects resolved to their pages (providers/redirects.py).

End to end: the real google-genai SDK asks the simulator over HTTP, the simulator's answer links to its
own redirect endpoint (a 302 to the source), and the provider resolves each link with one request that
does not follow it.  Failing links (404, 500, no Location, a link that hangs) keep the answer and are
marked unresolved, within the resolver's bounds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from prompt_analyzer.providers import ProviderResult, make_provider
from prompt_analyzer.providers.citations import domain_of, normalize_url
from prompt_analyzer.providers.redirects import RedirectResolver, is_redirect
from prompt_analyzer.providers.results import Citation
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator
from prompt_analyzer.simulator.content import make_answer
from prompt_analyzer.simulator.formats.gemini import SLOW_REDIRECT_S, redirect_link

from .helpers import ALL_SECRETS, make_settings

PROMPT = "Which project management tools do small agencies recommend?"
MODEL = "gemini-2.5-flash-lite"


@pytest.fixture(scope="module")
async def sim_server() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(SimulatorConfig.for_profile("fast"), host="127.0.0.1", port=0)
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: RunningSimulator) -> RunningSimulator:
    sim_server.set_config(SimulatorConfig.for_profile("fast"))
    await sim_server.reset()
    return sim_server


async def ask(sim: RunningSimulator, prompt: str) -> ProviderResult:
    settings = make_settings("gemini", model=MODEL, base_url=sim.base_urls["gemini"])
    provider = make_provider(settings, secrets=ALL_SECRETS)
    try:
        return await provider.complete(await provider.ask(prompt))  # as the engine does
    finally:
        await provider.aclose()


def expected_pages(sim: RunningSimulator, prompt: str) -> dict[str, str]:
    """Each simulated source's normalised page URL -> its domain."""
    return {normalize_url(s.url): s.domain for s in make_answer(prompt, "gemini", sim.config.seed).sources}


async def test_every_link_resolved_to_its_page(sim: RunningSimulator) -> None:
    r = await ask(sim, PROMPT)
    pages = expected_pages(sim, PROMPT)
    assert r.citations and len(r.citations) == len(pages)
    for c in r.citations:
        assert c.url in pages and c.domain == pages[c.url] and c.site
        assert c.metadata is not None and c.metadata["resolved"] is True
        assert is_redirect(c.metadata["redirect"]) and c.metadata["redirect"].startswith(sim.url)
    # One request per link, none followed (the pages are not on this machine: following would fail).
    stats = (await sim.stats())["platforms"]["gemini"]
    assert stats["redirects"] == len(pages) and stats["ok"] == 1
    # A title that is not a domain did not decide anything: the page did.
    phrase = [c for c in r.citations if c.title and " " in c.title]
    assert phrase and all(c.domain == pages[c.url] for c in phrase)
    assert [c.position for c in r.citations] == list(range(1, len(r.citations) + 1))
    assert r.citations[0].cited and not r.citations[-1].cited  # the retrieved-only source stays last


@pytest.mark.parametrize("kind", ["404", "500", "nolocation", "hang"])
async def test_a_failing_link_keeps_the_answer(sim: RunningSimulator, kind: str) -> None:
    prompt = f"{PROMPT} [[sim:redirect={kind}]]"
    sources = make_answer(prompt, "gemini", sim.config.seed).sources
    r = await ask(sim, prompt)
    assert r.text
    unresolved = [c for c in r.citations if c.metadata and not c.metadata["resolved"]]
    assert len(unresolved) == 1
    (bad,) = unresolved
    # The first source's link failed: it stays the redirect, its domain from its bare-domain title,
    # never the redirect host.
    assert is_redirect(bad.url) and bad.metadata is not None and bad.metadata["redirect"] == bad.url
    assert bad.domain == sources[0].domain != domain_of(bad.url)
    assert bad.title == sources[0].domain
    if kind in ("404", "500"):
        assert bad.metadata["status"] == int(kind)
    if kind == "hang":
        assert bad.metadata["error"] in ("ReadTimeout", "deadline")
    resolved = {c.url for c in r.citations if c is not bad}
    assert resolved == {normalize_url(s.url) for s in sources[1:]}


async def test_a_hanging_link_is_bounded(sim: RunningSimulator) -> None:
    """Timeouts are the resolver's; here small, to see that a hang costs about them, not more."""
    prompt = f"{PROMPT} [[sim:redirect=hang]]"
    r = await ask(sim, prompt)
    links = [c.metadata["redirect"] for c in r.citations if c.metadata]
    resolver = RedirectResolver(request_timeout_s=0.3, answer_deadline_s=0.6, max_in_flight=2)
    try:
        raw = [Citation(link, "", None, i, True) for i, link in enumerate(links, start=1)]
        start = time.monotonic()
        out = await resolver.resolve(raw)
        took = time.monotonic() - start
    finally:
        await resolver.aclose()
    assert sum(1 for c in out if c.metadata and not c.metadata["resolved"]) == 1
    assert sum(1 for c in out if c.metadata and c.metadata["resolved"]) == len(links) - 1
    assert took < 30  # bounded (the hang answers never); the figure itself is not asserted


async def test_deadline_for_the_whole_answer(sim: RunningSimulator) -> None:
    """Slow links (1 s each) one at a time against a 1.5 s deadline: the ones still waiting then are
    given up, marked ``deadline``, and the rest are kept."""
    src = make_answer(PROMPT, "gemini", sim.config.seed).sources
    links = [redirect_link(sim.url, s, "slow") for s in src]
    resolver = RedirectResolver(request_timeout_s=5, answer_deadline_s=1.5, max_in_flight=1)
    try:
        out = await resolver.resolve([Citation(link, "", None, i, True) for i, link in enumerate(links, start=1)])
    finally:
        await resolver.aclose()
    errors = [c.metadata.get("error") for c in out if c.metadata and not c.metadata["resolved"]]
    assert errors and set(errors) == {"deadline"}
    assert any(c.metadata and c.metadata["resolved"] for c in out)


async def test_two_links_to_one_page_become_one_citation(sim: RunningSimulator) -> None:
    src = make_answer(PROMPT, "gemini", sim.config.seed).sources[0]
    same = replace(src, url=src.url + "#another-fragment")  # normalises to the same page
    cites = [
        Citation("https://other.example/page", "other.example", None, 1, True),
        Citation(redirect_link(sim.url, src), "", "Some title", 2, False),
        Citation(redirect_link(sim.url, same), "", None, 3, True),
    ]
    resolver = RedirectResolver()
    try:
        out = await resolver.resolve(cites)
        again = await resolver.resolve(cites)  # cached: no second request for a resolved link
    finally:
        await resolver.aclose()
    assert [(c.url, c.position, c.cited) for c in out] == [
        ("https://other.example/page", 1, True), (normalize_url(src.url), 2, True),
    ]
    assert out == again
    assert (await sim.stats())["platforms"]["gemini"]["redirects"] == 2


def test_is_redirect() -> None:
    assert is_redirect("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQabc")
    assert not is_redirect("https://www.google.com/search?q=grounding-api-redirect")
    assert not is_redirect("ftp://x/grounding-api-redirect/a")
    assert not is_redirect("not a url [")


async def test_concurrency_is_bounded(sim: RunningSimulator) -> None:
    """Four slow links (each answers after 1 s) through a resolver allowing two at a time take two
    rounds: at least 2 s (a lower bound, which load cannot break), where unbounded they take one."""
    src = make_answer(PROMPT, "gemini", sim.config.seed).sources
    links = [redirect_link(sim.url, s, "slow") for s in src][:4]
    assert len(links) == 4
    resolver = RedirectResolver(request_timeout_s=10, answer_deadline_s=60, max_in_flight=2)
    try:
        start = time.monotonic()
        out = await resolver.resolve([Citation(link, "", None, i, True) for i, link in enumerate(links, start=1)])
        took = time.monotonic() - start
    finally:
        await resolver.aclose()
    assert all(c.metadata and c.metadata["resolved"] for c in out)
    assert took >= 2 * SLOW_REDIRECT_S
