"""`--html FILE`: one self-contained page, opened in a real headless chromium (Debian's, through playwright)
from a file:// URL with every other request refused, each chart checked as drawn, and a screenshot kept in
tests/artifacts/ (ignored by git) for a person to look at."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Route, async_playwright

from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.render_html import CHART_IDS, render_html, write_html
from prompt_analyzer.db import Store

from .seed import P, Q, seed_flagged_change, seed_two_batches

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (.ci/run installs it); playwright downloads nothing
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: install Debian's chromium (`apt-get install -y chromium`, as .ci/run does)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), headless=True)
        yield b
        await b.close()


class Opened:
    """A page loaded offline, with what it tried to fetch and what it complained about."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.refused: list[str] = []
        self.errors: list[str] = []

    async def route(self, route: Route, request: Request) -> None:
        if request.url.startswith("file://"):
            await route.continue_()
        else:
            self.refused.append(request.url)
            await route.abort()

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            self.errors.append(f"{msg.type}: {msg.text}")


async def open_offline(browser: Browser, path: Path) -> Opened:
    context = await browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    page = await context.new_page()
    opened = Opened(page)
    await page.route("**/*", opened.route)
    page.on("console", opened.console)
    page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
    await page.goto(path.as_uri(), wait_until="load")
    return opened


async def chart(page: Page, chart_id: str, selector: str) -> int:
    """How many ``selector`` elements the plotly chart ``chart_id`` drew in its SVG."""
    return await page.locator(f"#{chart_id} .main-svg {selector}").count()


async def test_the_page_renders_offline_in_chromium(store: Store, tmp_path: Path, browser: Browser) -> None:
    await seed_two_batches(store)
    report = await compute_report(store, project=P)
    path = write_html(report, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    # Self-contained: no script, style, font or image from elsewhere.
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link[^>]+href=", text)
    assert text.count("<script") >= len(CHART_IDS) and "Plotly.newPlot" in text

    opened = await open_offline(browser, path)
    page = opened.page
    await page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {len(CHART_IDS)}")
    for chart_id in CHART_IDS:
        assert await page.locator(f"#{chart_id}-1 .main-svg").count() >= 1, chart_id
    # visibility: a bar per brand and platform (3 x 2) with its interval drawn as error bars
    assert await chart(page, "visibility-1", ".bars .point") == 6
    assert await chart(page, "visibility-1", ".errorbar") >= 6
    # share of voice: a slice per brand named (Acme 3, Globex 3, Initech 2)
    assert await chart(page, "share-of-voice-1", ".slice") == 3
    # rank: a bar per brand and platform where the brand is named (Initech: openai and gemini)
    assert await chart(page, "rank-1", ".bars .point") == 6
    # trend: a line per brand over the two batches, the second marked as served differently
    assert await chart(page, "trend-1", ".scatterlayer .trace") == 3
    assert await chart(page, "trend-1", ".scatterlayer .point") == 6
    assert "served differently" in await page.locator("#trend-1").inner_text()
    # sites: the seven cited sites, the redirect host never among them
    assert await chart(page, "domains-1", ".bars .point") == 7
    domains = await page.locator("#domains-1").inner_text()
    assert "acme.com" in domains and "vertexaisearch" not in domains and "google.com" not in domains
    # the headline and the table a reader checks the charts against
    body = await page.locator("body").inner_text()
    assert "43% (16–75%) of 7 answers" in body
    assert "Served differently from the previous batch: openai: model" in body
    assert re.search(r"Initech\s+29% \(8–64%\)\s+2/7\s+25%\s+1\.5\s+0%", body)
    assert opened.refused == [] and opened.errors == []

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 50_000
    await page.context.close()


async def test_names_are_text_not_markup(store: Store, tmp_path: Path, browser: Browser) -> None:
    """A brand named like markup stays text in the tables and the charts; a flagged change is shown."""
    await seed_flagged_change(store)
    from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand

    await AnalyticsStore(store.pool).add_brands([NewBrand(Q, "</script><b id=x>Bold</b> 100%{y}")])
    report = await compute_report(store, project=Q)
    text = render_html(report)
    assert "</script><b id=x>" not in text
    path = tmp_path / "q.html"
    path.write_text(text, encoding="utf-8")
    opened = await open_offline(browser, path)
    page = opened.page
    await page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {len(CHART_IDS)}")
    assert await page.locator("#x").count() == 0  # no element made from the name
    assert "</script><b id=x>Bold</b> 100%{y}" in await page.locator("table").first.inner_text()
    assert "▲ +75 pts" in await page.locator("body").inner_text()
    assert opened.refused == [] and opened.errors == []
    await page.context.close()
