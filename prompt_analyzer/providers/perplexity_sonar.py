"""Perplexity Sonar chat completions (``POST /chat/completions``): a decoded body to an :class:`Answer`.

OpenAI-style ``choices`` plus ``citations: [url]`` and ``search_results: [{title, url, ...}]``.  A
source is *cited* when the answer references it with a numbered marker ``[n]`` (n indexes the
``citations`` list, else ``search_results``); every other listed source was only *retrieved*.
``citations`` names every source the answer could draw on (in practice the whole search result
list), so membership in it alone says nothing about attribution; the markers do.  Cited positions
follow the first marker's place in the text.  Search is billed as a per-request fee by context size.
"""

from __future__ import annotations

from typing import Any

from .citations import CitationBuilder, numbered_markers
from .errors import MalformedResponse, error_text
from .json_fields import as_dict, as_int, as_list, as_object, as_str
from .pricing import reported_cost
from .results import Answer, Usage

__all__ = ["parse"]


def parse(body: Any, request_id: str | None = None, *, search_context_size: str | None = None) -> Answer:
    """A Sonar body to an Answer; ``search_context_size`` is what was asked for (the body may say)."""
    body = as_object(body)
    if body.get("error") is not None:
        raise MalformedResponse(f"error in 200: {error_text(body)}")
    rid = request_id or as_str(body.get("id"))
    choices = as_list(body.get("choices"))
    if not choices:
        raise MalformedResponse("response has no choices", request_id=rid)
    choice = as_dict(choices[0])
    text = as_dict(choice.get("message")).get("content")
    if not isinstance(text, str):
        raise MalformedResponse("choices[0].message.content is not a string", request_id=rid)
    finish = as_str(choice.get("finish_reason"))

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

    usage = body.get("usage")
    u = as_dict(usage)
    ctx = as_str(u.get("search_context_size")) or search_context_size
    answer = Answer(
        text=text,
        model_version=as_str(body.get("model")),
        usage=Usage(
            input_tokens=as_int(u.get("prompt_tokens")),
            output_tokens=as_int(u.get("completion_tokens")),
            total_tokens=as_int(u.get("total_tokens")),
            reported=isinstance(usage, dict),
            search_context_size=ctx,  # Sonar bills search as a per-request fee by context size, not per search
        ),
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
