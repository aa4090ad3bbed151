"""normalize_url / domain_of / CitationBuilder: one URL form, one domain and site rule, one dedupe rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompt_analyzer.providers import Citation
from prompt_analyzer.providers.citations import (
    CitationBuilder,
    domain_from_title,
    domain_of,
    normalize_url,
    numbered_markers,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://WWW.Example.COM/Path?a=1", "https://www.example.com/Path?a=1"),
        ("https://example.com/p?utm_source=openai", "https://example.com/p"),
        ("https://example.com/p?b=2&utm_medium=x&a=1&UTM_Campaign=y", "https://example.com/p?b=2&a=1"),
        ("https://example.com/p#section", "https://example.com/p"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a%20b?q=x+y", "https://example.com/a%20b?q=x+y"),  # encoding kept
        ("  https://example.com/x  ", "https://example.com/x"),
        ("https://User:Pw@Example.com:8443/X", "https://User:Pw@example.com:8443/X"),
        ("not a url", "not a url"),
        ("", ""),
        ("http://[::1", "http://[::1"),  # invalid IPv6: returned stripped, not raised
        # yarl: default ports, IDNA, case; RFC 3986 percent-encoding; click ids
        ("HTTP://Example.COM:80/a?utm_source=x&gclid=1&q=2#frag", "http://example.com/a?q=2"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:443", "https://example.com/"),
        ("http://example.com:443/", "http://example.com:443/"),  # not the scheme's default port
        ("https://a.com/%7euser/%7Ex?k=%7e", "https://a.com/~user/~x?k=~"),
        ("https://a.com/a%2fb?x=%2b&y=%26&z=%c3%a9", "https://a.com/a%2Fb?x=%2B&y=%26&z=%C3%A9"),  # reserved stay
        ("https://a.com/%zz", "https://a.com/%zz"),  # not an escape: left alone
        ("http://bücher.example/ü", "http://xn--bcher-kva.example/ü"),
        ("http://XN--BCHER-KVA.example/", "http://xn--bcher-kva.example/"),
        ("http://[2001:DB8::1]:8080/x#f", "http://[2001:db8::1]:8080/x"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("http://127.0.0.1:8000/p?fbclid=z", "http://127.0.0.1:8000/p"),
        ("http://localhost/", "http://localhost/"),
        ("https://x.com/p?GCLID=1&id=7&msclkid=2&dclid=3&gbraid=4&wbraid=5&srsltid=6&yclid=7&mc_cid=8&mc_eid=9"
         "&_hsenc=a&_hsmi=b&igshid=c&ref_src=twsrc%5Etfw&utm%5Fmedium=e", "https://x.com/p?id=7"),
        ("https://x.com/p?ref=home&gclidx=1", "https://x.com/p?ref=home&gclidx=1"),  # only whole names
        ("//example.com/x?utm_source=y#top", "//example.com/x"),  # no scheme: only tracking and fragment go
        ("mailto:Someone@Example.com", "mailto:Someone@Example.com"),
        # a raw space is not encoded (Gemini sends such links; the stored URL is the one it sent)
        ("https://www.google.com/search?q=weather+in+San Francisco, CA,+US",
         "https://www.google.com/search?q=weather+in+San Francisco, CA,+US"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_normalize_url_non_string() -> None:
    assert normalize_url(None) == ""  # type: ignore[arg-type]
    assert normalize_url(42) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.britannica.com/place/x", "britannica.com"),
        ("https://en.wikipedia.org/wiki/Paris", "en.wikipedia.org"),
        ("https://WWW.Example.com:8080/", "example.com"),
        ("https://www.example.com./", "example.com"),
        ("https://wwwexample.com/", "wwwexample.com"),
        ("garbage", ""),
        ("http://[::1", ""),
        ("http://bücher.example/", "xn--bcher-kva.example"),
        ("http://[::1]:8080/", "::1"),
        ("http://127.0.0.1/", "127.0.0.1"),
        ("https://a.com:99999/", "a.com"),  # yarl refuses the port; the host still counts
    ],
)
def test_domain_of(url: str, domain: str) -> None:
    assert domain_of(url) == domain


def test_domain_from_title() -> None:
    assert domain_from_title("weather.gov") == "weather.gov"
    assert domain_from_title("www.Wunderground.com") == "wunderground.com"
    assert domain_from_title("Weather information for San Francisco, CA, US") is None
    assert domain_from_title(None) is None
    assert domain_from_title("nodot") is None


def test_builder_dedupes_and_prefers_cited() -> None:
    b = CitationBuilder()
    b.add("https://a.com/x?utm_source=foo", "A", cited=False)
    b.add("https://b.com/", "B", cited=False)
    b.add("HTTPS://A.COM/x#frag", None, cited=True, at=50)
    b.add("https://c.com/", "C", cited=True, at=10)
    b.add("https://c.com/?utm_campaign=z", "C again", cited=True, at=99)
    b.add(None, "ignored", cited=True)
    b.add("   ", "ignored", cited=True)
    assert b.build() == [
        Citation("https://c.com/", "c.com", "C", 1, True),
        Citation("https://a.com/x", "a.com", "A", 2, True),
        Citation("https://b.com/", "b.com", "B", 3, False),
    ]


def test_builder_dedupes_equivalent_encodings() -> None:
    b = CitationBuilder()
    b.add("https://a.com/%7Euser?gclid=1", cited=False)
    b.add("HTTPS://A.COM:443/~user#bio", "A", cited=True, at=3)
    assert b.build() == [Citation("https://a.com/~user", "a.com", "A", 1, True)]


@pytest.mark.parametrize(
    ("url", "domain", "site"),
    [
        ("https://en.m.wikipedia.org/wiki/Paris", "en.m.wikipedia.org", "wikipedia.org"),
        ("https://blog.example.co.uk/p", "blog.example.co.uk", "example.co.uk"),
        ("https://www.bbc.co.uk/news", "bbc.co.uk", "bbc.co.uk"),
        ("https://user.github.io/x", "user.github.io", "user.github.io"),  # github.io is a public suffix
        ("https://bücher.example/", "xn--bcher-kva.example", "xn--bcher-kva.example"),  # .example: no known suffix
        ("https://www.xn--bcher-kva.de/", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("https://shop.пример.рф/", "shop.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
        ("http://localhost:8080/", "localhost", "localhost"),
        ("http://192.168.1.20/a", "192.168.1.20", "192.168.1.20"),
        ("http://[2001:db8::1]/a", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_each_citation_has_its_site(url: str, domain: str, site: str) -> None:
    b = CitationBuilder()
    b.add(url, cited=True)
    (c,) = b.build()
    assert (c.domain, c.site) == (domain, site)


def test_gemini_redirects_take_domain_and_site_from_the_title() -> None:
    b = CitationBuilder()
    link = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ"
    b.add(link, "forecast.weather.gov", cited=True, domain=domain_from_title("forecast.weather.gov"))
    (c,) = b.build()
    assert (c.url, c.domain, c.site) == (link, "forecast.weather.gov", "weather.gov")


def test_builder_call_order_without_offsets() -> None:
    b = CitationBuilder()
    for u in ("https://x.com/1", "https://x.com/2", "https://x.com/1"):
        b.add(u, cited=True)
    assert [(c.url, c.position) for c in b.build()] == [("https://x.com/1", 1), ("https://x.com/2", 2)]


def test_builder_domain_override_and_title_backfill() -> None:
    b = CitationBuilder()
    b.add("https://vertexaisearch.cloud.google.com/r/abc", None, cited=False, domain="weather.gov")
    b.add("https://vertexaisearch.cloud.google.com/r/abc", "weather.gov", cited=False)
    (c,) = b.build()
    assert c.domain == "weather.gov" and c.title == "weather.gov" and c.site == "weather.gov"


@given(st.text())
def test_normalize_url_never_raises(text: str) -> None:
    out = normalize_url(text)
    assert isinstance(out, str)
    assert isinstance(domain_of(text), str)
    # Idempotent: normalising twice changes nothing.
    assert normalize_url(out) == out


_urls = st.builds(
    lambda scheme, host, path, q, frag: f"{scheme}://{host}/{path}{q}{frag}",
    st.sampled_from(["http", "HTTPS", "https"]),
    st.from_regex(r"(www\.)?[A-Za-z0-9]{1,10}\.(com|org|CO\.uk)", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/_%\-]{0,20}", fullmatch=True),
    st.sampled_from(["", "?a=1", "?utm_source=x", "?a=1&utm_medium=y&b=2", "?gclid=1&a=%7e", "?fbclid=2"]),
    st.sampled_from(["", "#top"]),
)


@given(_urls)
def test_normalize_url_properties(url: str) -> None:
    out = normalize_url(url)
    assert "utm_" not in out and "#" not in out and "clid" not in out
    assert out.split("://", 1)[0] == out.split("://", 1)[0].lower()
    assert domain_of(out) == domain_of(url)
    assert not domain_of(out).startswith("www.")


@given(st.lists(st.tuples(_urls, st.booleans(), st.none() | st.integers(0, 1000)), max_size=20))
def test_builder_positions_are_1_to_n_and_unique(entries: list[tuple[str, bool, int | None]]) -> None:
    b = CitationBuilder()
    for url, cited, at in entries:
        b.add(url, cited=cited, at=at)
    out = b.build()
    assert [c.position for c in out] == list(range(1, len(out) + 1))
    assert len({c.url for c in out}) == len(out)
    # cited first, then retrieved
    flags = [c.cited for c in out]
    assert flags == sorted(flags, reverse=True)
    cited_urls = {normalize_url(u) for u, cited, _ in entries if cited}
    assert {c.url for c in out if c.cited} == cited_urls


def test_numbered_markers_first_offset_of_each_number() -> None:
    assert numbered_markers("A [1]. B [2, 1][3,4] and [12] [x] [] [99999]") == {1: 2, 2: 9, 3: 15, 4: 15, 12: 25}
