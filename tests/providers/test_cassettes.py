"""Wire-format contract tests: real recorded bodies, played through the real SDKs by vcrpy.

Each cassette (generated from ``payloads/`` by ``make_cassettes.py``) answers the request our
provider module makes through its real client (openai/anthropic over httpx2, google-genai over our
httpx client, perplexity over httpx); the parsed result is checked field by field.  Costs are
worked out by hand from ``prices.toml``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from prompt_analyzer.providers import (
    Citation,
    PermanentError,
    ProviderResult,
    RateLimited,
    make_provider,
)

from .helpers import ALL_SECRETS, CASSETTES, KEYS, VCR, load_payload, make_settings
from .make_cassettes import PROMPT, SPECS, build_cassette

M = Decimal(1_000_000)


async def ask(cassette: str, name: str, **changes: object) -> ProviderResult:
    provider = make_provider(make_settings(name, **changes), secrets=ALL_SECRETS)
    try:
        with VCR.use_cassette(f"{cassette}.yaml") as cas:
            result = await provider.complete(await provider.ask(PROMPT))  # as the engine does
            assert cas.play_count == 1
        return result
    finally:
        await provider.aclose()


async def ask_error(cassette: str, name: str, **changes: object) -> BaseException:
    provider = make_provider(make_settings(name, **changes), secrets=ALL_SECRETS)
    try:
        with VCR.use_cassette(f"{cassette}.yaml"):
            with pytest.raises(Exception) as info:
                await provider.ask(PROMPT)
        return info.value
    finally:
        await provider.aclose()


def test_cassettes_are_generated_from_payloads() -> None:
    for name in SPECS:
        assert (CASSETTES / f"{name}.yaml").read_text(encoding="utf-8") == build_cassette(name), name


def test_cassettes_hold_no_credentials() -> None:
    for path in Path(CASSETTES).glob("*.yaml"):
        text = path.read_text(encoding="utf-8").lower()
        for header in ("authorization", "x-api-key", "x-goog-api-key"):
            assert header not in text, (path.name, header)
        for key in KEYS.values():
            assert key.lower() not in text


# ---------------------------------------------------------------- OpenAI


async def test_openai_web_search() -> None:
    body = load_payload("openai-responses-web-search.json")
    r = await ask("openai-web-search", "openai", model="gpt-4.1-mini")
    assert r.text == body["output"][1]["content"][0]["text"]
    assert r.text.startswith("The tallest mountain in Alberta is **Mount Columbia**")
    assert r.model_version == "gpt-5.2-2025-12-11"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (8530, 98, 8628)
    # The body reports gpt-5.2 (not in the table): priced as the configured gpt-4.1-mini,
    # plus one web_search call at $10 / 1k.
    assert r.metadata["price_model"] == "gpt-4.1-mini"
    assert r.metadata["searches"] == 1
    assert r.cost == 8530 * Decimal("0.40") / M + 98 * Decimal("1.60") / M + Decimal("0.010")
    assert r.cost == Decimal("0.0135688")
    assert r.citations == [
        Citation(
            url="https://www.britannica.com/place/Mount-Columbia",
            domain="britannica.com",
            title="Mount Columbia | mountain, Alberta, Canada | Britannica",
            position=1,
            cited=True,
        )
    ]
    assert r.request_id == "req_vcr_openai_web_search"
    assert r.raw == body
    assert r.metadata["search_queries"] == [
        "tallest mountain in Alberta",
        "Mount Columbia tallest mountain in Alberta elevation",
    ]
    assert isinstance(r.latency_ms, int) and r.latency_ms >= 0
    assert "usage_missing" not in r.metadata


async def test_openai_plain() -> None:
    r = await ask("openai-plain", "openai", model="gpt-4.1-mini", web_search=False)
    assert r.text == "The capital of France is Paris."
    assert r.model_version == "gpt-4o-2024-08-06"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (14, 8, 22)
    assert r.metadata["searches"] == 0
    assert r.cost == Decimal("0.0000184")  # 14 x 0.40 + 8 x 1.60 per M
    assert r.citations == []
    assert r.request_id == "req_vcr_openai_plain"


async def test_openai_429() -> None:
    err = await ask_error("openai-429", "openai")
    assert isinstance(err, RateLimited)
    # No retry-after header in this real 429: the wait comes from "Please try again in 6ms".
    assert err.retry_after == pytest.approx(0.006)
    assert err.status == 429
    assert "HTTP 429" in err.message and "Rate limit reached" in err.message
    assert "\n" not in err.message
    assert err.__cause__ is None and err.__suppress_context__


# ---------------------------------------------------------------- Claude


CLAUDE_WEB = [
    # cited, in order of first citing text block
    ("https://www.accuweather.com/en/us/san-francisco/94103/weather-forecast/347629", "accuweather.com", True),
    ("https://www.wunderground.com/weather/us/ca/san-francisco", "wunderground.com", True),
    ("https://www.wunderground.com/hourly/us/ca/san-francisco", "wunderground.com", True),
    # retrieved only, in result order
    ("https://weather.com/weather/tenday/l/San+Francisco+CA+USCA0987:1:US", "weather.com", False),
    ("https://weather.com/weather/today/l/USCA0987:1:US", "weather.com", False),
    ("https://www.wunderground.com/forecast/us/ca/san-francisco", "wunderground.com", False),
    ("https://forecast.weather.gov/MapClick.php?lat=37.7771&lon=-122.4196", "forecast.weather.gov", False),
    ("https://www.nbcbayarea.com/weather/", "nbcbayarea.com", False),
    (
        "https://www.theweathernetwork.com/en/city/us/california/san-francisco/current?_guid_iss_=1",
        "theweathernetwork.com",
        False,
    ),
    ("https://abc7news.com/weather/", "abc7news.com", False),
]


async def test_claude_web_search() -> None:
    body = load_payload("anthropic-web-search.json")
    r = await ask("claude-web-search", "claude", model="claude-haiku-4-5")
    expected_text = "".join(b["text"] for b in body["content"] if b["type"] == "text")
    assert r.text == expected_text
    assert r.text.startswith("Based on the search results, here's the weather information")
    assert len(r.text) == len(expected_text)
    assert r.model_version == "claude-sonnet-4-20250514"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (8984, 520, 9504)
    assert r.metadata["searches"] == 1
    assert r.metadata["price_model"] == "claude-haiku-4-5"
    assert r.cost == 8984 * Decimal("1.00") / M + 520 * Decimal("5.00") / M + Decimal("0.010")
    assert r.cost == Decimal("0.021584")
    assert [(c.url, c.domain, c.cited) for c in r.citations] == CLAUDE_WEB
    assert [c.position for c in r.citations] == list(range(1, 11))
    titles = {res["url"]: res["title"] for b in body["content"] if b["type"] == "web_search_tool_result"
              for res in b["content"]}
    for c in r.citations:
        assert c.title == titles[c.url]
    assert r.request_id == "req_vcr_claude_web_search"
    assert r.metadata["stop_reason"] == "end_turn"


async def test_claude_plain() -> None:
    r = await ask("claude-plain", "claude", model="claude-haiku-4-5", web_search=False)
    assert r.text == "4"
    assert r.model_version == "claude-opus-4-6"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (14, 5, 19)
    assert r.cost == Decimal("0.000039")  # 14 x 1.00 + 5 x 5.00 per M
    assert r.citations == []


async def test_claude_429() -> None:
    err = await ask_error("claude-429", "claude")
    assert isinstance(err, RateLimited)
    # No retry-after in these (2024) headers: requests-remaining is 0 and resets at 20:00:00Z,
    # one second after the response's date header (19:59:59).
    assert err.retry_after == pytest.approx(1.0)
    assert "HTTP 429" in err.message and "rate_limit_error" in err.message
    assert err.request_id == "req_01T5fCVnYdf9X5ZW6KayReBK"


# ---------------------------------------------------------------- Gemini


async def test_gemini_grounding() -> None:
    body = load_payload("gemini-grounding.json")
    r = await ask("gemini-grounding", "gemini", model="gemini-2.5-pro")
    assert r.text == body["candidates"][0]["content"]["parts"][0]["text"]
    assert r.text.startswith("## Weather in San Francisco is Mild and Partly Cloudy")
    assert r.model_version == "gemini-2.5-pro"
    # input = prompt 17 + tool-use prompt 119; output = candidates 201 + thoughts 213
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (136, 414, 550)
    assert r.request_id == "btnJaOrqE4_6qtsP7bOboQs"
    assert r.metadata["searches"] == 1 and r.metadata["grounded"] is True
    assert r.metadata["search_queries"] == ["weather in San Francisco today"]
    # gemini-2.5-pro is not in the price table and no override is configured.
    assert r.cost is None and r.metadata["price_unknown"] is True
    chunks = body["candidates"][0]["groundingMetadata"]["groundingChunks"]
    # The cassette holds no answer for the two grounding redirects (vcrpy refuses them): they stay
    # unresolved, keep the redirect as URL and take their domain from their bare-domain titles.
    assert [(c.url, c.domain, c.title, c.position, c.cited) for c in r.citations] == [
        (chunks[0]["web"]["uri"], "google.com", chunks[0]["web"]["title"], 1, True),
        (chunks[1]["web"]["uri"], "weather.gov", "weather.gov", 2, True),
        (chunks[2]["web"]["uri"], "wunderground.com", "wunderground.com", 3, True),
    ]
    assert r.citations[0].metadata is None  # a Google search link, not a redirect
    for c in r.citations[1:]:
        assert c.metadata and c.metadata["redirect"] == c.url and c.metadata["resolved"] is False


async def test_gemini_grounding_priced_by_config() -> None:
    r = await ask(
        "gemini-grounding", "gemini", model="gemini-2.5-pro",
        input_price_per_mtok=Decimal("1.25"), output_price_per_mtok=Decimal("10"),
    )
    # Config-only prices carry no search fee.
    assert r.cost == 136 * Decimal("1.25") / M + 414 * Decimal("10") / M == Decimal("0.00431")
    assert "price_unknown" not in r.metadata


async def test_gemini_plain() -> None:
    r = await ask("gemini-plain", "gemini", model="gemini-2.5-flash", web_search=False)
    assert r.text == "Hello! How can I help you today?"
    assert r.model_version == "gemini-2.5-flash"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (9, 43, 52)
    assert r.metadata["searches"] == 0 and r.metadata["grounded"] is False
    assert r.cost == 9 * Decimal("0.30") / M + 43 * Decimal("2.50") / M == Decimal("0.0001102")
    assert r.citations == []
    assert r.request_id == "bzlXaa_EE_aHqtsPi_zw8Ao"


async def test_gemini_429() -> None:
    err = await ask_error("gemini-429", "gemini", model="gemini-2.5-flash")
    assert isinstance(err, RateLimited)
    assert err.retry_after == 26.0  # error.details[] RetryInfo.retryDelay "26s"
    assert "HTTP 429" in err.message and "RESOURCE_EXHAUSTED" in err.message
    assert "You exceeded your current quota" in err.message


# ---------------------------------------------------------------- Perplexity


async def test_perplexity_agent() -> None:
    body = load_payload("perplexity-agent-responses.json")
    r = await ask("perplexity-agent", "perplexity", api="agent", model="preset:fast")
    assert r.text == "Paris is the capital of France.[1]"
    assert r.model_version == "openai/gpt-5.6-luna"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (2830, 13, 2843)
    assert r.metadata["api"] == "agent"
    assert r.metadata["searches"] == 1
    # Neither the reported model nor the preset is in the price table: ours is unknown,
    # Perplexity's own figure is kept beside it.
    assert r.cost is None and r.metadata["price_unknown"] is True
    assert r.metadata["provider_cost"] == "0.00312"
    results = body["output"][0]["results"]
    assert len(r.citations) == 10
    first = r.citations[0]
    assert first == Citation("https://en.wikipedia.org/wiki/Paris", "en.wikipedia.org", "Paris - Wikipedia", 1, True)
    assert [c.cited for c in r.citations] == [True] + [False] * 9
    assert [c.url for c in r.citations[1:]] == [x["url"] for x in results[1:]]
    assert [c.title for c in r.citations] == [x["title"] for x in results]
    assert r.citations[1].domain == "britannica.com"
    assert r.citations[7].url == "https://home.adelphi.edu/~ca19535/page%204.html"
    assert r.request_id == "resp_d03d400f-d627-425a-8e9f-2f1ef3a4a0b2"


async def test_perplexity_sonar() -> None:
    body = load_payload("perplexity-sonar-docs-example.json")
    r = await ask("perplexity-sonar", "perplexity", api="sonar", model="sonar-pro", search_context_size="low")
    assert r.text == body["choices"][0]["message"]["content"]
    assert r.model_version == "sonar-pro"
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (14, 120, 134)
    # 14 x 3 + 120 x 15 per M, plus the $6 / 1k low-context request fee
    assert r.cost == 14 * Decimal(3) / M + 120 * Decimal(15) / M + Decimal("0.006") == Decimal("0.007842")
    assert r.metadata["provider_cost"] == "0.007842"
    assert r.metadata["search_context_size"] == "low"
    assert r.metadata["num_search_queries"] == 1
    assert [(c.url, c.domain, c.position, c.cited) for c in r.citations] == [
        ("https://en.wikipedia.org/wiki/Milky_Way", "en.wikipedia.org", 1, True),
        (
            "https://www.esa.int/Science_Exploration/Space_Science/Gaia/How_many_stars_are_there_in_the_Universe",
            "esa.int", 2, True,
        ),
        ("https://science.nasa.gov/resource/how-many-stars-are-in-the-milky-way/", "science.nasa.gov", 3, True),
        ("https://www.space.com/25959-how-many-stars-are-in-the-milky-way.html", "space.com", 4, False),
    ]
    assert r.citations[0].title == "Milky Way - Wikipedia"
    assert r.request_id == body["id"]


async def test_claude_refusal_is_permanent() -> None:
    from prompt_analyzer.providers.anthropic_messages import parse as parse_response

    body = load_payload("anthropic-plain.json")
    body["stop_reason"] = "refusal"
    with pytest.raises(PermanentError):
        parse_response(body)
