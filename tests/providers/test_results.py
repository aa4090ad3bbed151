"""The result shapes: a Citation's site follows its domain unless given."""

from __future__ import annotations

import dataclasses

from prompt_analyzer.providers import Citation, ProviderResult


def test_citation_site_is_derived_from_its_domain() -> None:
    c = Citation("https://en.m.wikipedia.org/wiki/X", "en.m.wikipedia.org", None, 1, True)
    assert c.site == "wikipedia.org"
    assert c == Citation("https://en.m.wikipedia.org/wiki/X", "en.m.wikipedia.org", None, 1, True, "wikipedia.org")
    assert Citation("x", "", None, 1, False).site == ""
    assert Citation("x", "a.example.com", None, 1, False, site="given").site == "given"
    assert [f.name for f in dataclasses.fields(Citation)] == ["url", "domain", "title", "position", "cited", "site",
                                                             "metadata"]


def test_provider_result_defaults() -> None:
    r = ProviderResult("t", None, None, None, None, None, 0)
    assert (r.citations, r.request_id, r.raw, r.metadata) == ([], None, None, {})
