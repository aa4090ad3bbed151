"""site_of: a host's registrable domain from the offline Public Suffix List."""

from __future__ import annotations

import pytest

from prompt_analyzer.providers import sites
from prompt_analyzer.providers.sites import site_of


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("en.m.wikipedia.org", "wikipedia.org"),
        ("blog.example.co.uk", "example.co.uk"),
        ("bbc.co.uk", "bbc.co.uk"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("user.github.io", "user.github.io"),  # private-section suffix github.io
        ("a.b.user.github.io", "user.github.io"),
        ("github.io", "github.io"),  # a bare public suffix is its own site
        ("co.uk", "co.uk"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),  # .example is no known suffix
        ("a.b.intranet.corp", "a.b.intranet.corp"),
        ("shop.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),  # IDNA form of пример.рф
        ("News.Example.COM.", "example.com"),
        ("localhost", "localhost"),
        ("10.0.0.1", "10.0.0.1"),
        ("::1", "::1"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("", ""),
    ],
)
def test_site_of(host: str, site: str) -> None:
    assert site_of(host) == site


def test_the_list_is_parsed_once() -> None:
    assert sites._suffixes() is sites._suffixes()
