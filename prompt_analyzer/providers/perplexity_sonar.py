"""Perplexity Sonar chat completions (``POST /chat/completions``): a decoded body to an :class:`Answer`.

OpenAI-style ``choices`` plus ``citations: [url]`` and ``search_results: [{title, url, ...}]``.  A
source is *cited* when the answer references it with a numbered marker ``[n]`` (n indexes the
``citations`` list, else ``search_results``); every other listed source was only *retrieved*.
``citations`` names every source the answer could draw on (in practice the whole search result
list), so membership in it alone says nothing about attribution; the markers do.  Cited positions
follow the first marker's place in the text.  Search is billed as a per-request fee by context size.

The Chat Completions envelope (the first choice, an ``error`` in a 200, ``usage``) is read by
:mod:`.chat_completions`, as for every OpenAI-compatible endpoint; the text rule (a string, else
malformed) and the sources are Sonar's own.
"""

from __future__ import annotations

from typing import Any

from .chat_completions import read_envelope, read_usage
from .citations import CitationBuilder, numbered_markers
from .errors import MalformedResponse
from .json_fields import as_dict, as_int, as_list, as_str
from .pricing import reported_cost
from .results import Answer

__all__ = ["parse"]


def parse(body: Any, request_id: str | None = None, *, search_context_size: str | None = None) -> Answer:
    """A Sonar body to an Answer; ``search_context_size`` is what was asked for (the body may say)."""
    env = read_envelope(body, request_id)
    body, finish, rid = env.body, env.finish_reason, env.request_id
    text = env.message.get("content")
    if not isinstance(text, str):
        raise MalformedResponse("choices[0].message.content is not a string", request_id=rid)

    citations = [c for c in as_list(body.get("citations")) if isinstance(c, str)]
    results = [as_dict(r) for r in as_list(body.get("search_results"))]
    titles: dict[str, str] = {}
    for r in results:
        if isinstance(r.get("url"), str) and isinstance(r.get("title"), str):
            titles.setdefault(r["url"], r["title"])
    numbered: list[Any] = list(citations) or [r.get("url") for r in results]
    cites = CitationBuilder()
    for n, at in numbered_markers(text).items():
        if 1 <= n <= len(numbered) and isinstance(numbered[n - 1], str):
            url = numbered[n - 1]
            cites.add(url, titles.get(url), cited=True, at=at)
    for url in citations:
        cites.add(url, titles.get(url), cited=False)
    for r in results:
        cites.add(r.get("url"), r.get("title"), cited=False)

    u = as_dict(body.get("usage"))
    ctx = as_str(u.get("search_context_size")) or search_context_size
    usage = read_usage(body)
    usage.search_context_size = ctx  # Sonar bills search as a per-request fee by context size, not per search
    answer = Answer(
        text=text,
        model_version=as_str(body.get("model")),
        usage=usage,
        citations=cites.build(),
        request_id=rid,
    )
    answer.metadata["api"] = "sonar"
    answer.metadata["search_context_size"] = ctx
    if finish:
        answer.metadata["finish_reason"] = finish
    if finish == "length":
        answer.metadata["truncated"] = True
    nq = as_int(u.get("num_search_queries"))
    if nq is not None:
        answer.metadata["num_search_queries"] = nq
    cost = reported_cost(u.get("cost"))
    if cost is not None:
        answer.metadata["provider_cost"] = str(cost)
    return answer
