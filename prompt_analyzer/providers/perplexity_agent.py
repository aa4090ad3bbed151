"""Perplexity's Agent API (``POST /v1/agent``, Responses-compatible): a decoded body to an :class:`Answer`.

The ``message`` items and ``usage`` are the Responses shape and are read by :mod:`.openai_responses`.
Perplexity's own parts are read here: ``search_results`` items (what was retrieved), ``[n]`` markers
in the text (n is a search result's ``id``, else its 1-based order: cited, like ``url_citation``
annotations), runs that fail inside a 200, and ``usage.cost`` / ``tool_calls_details``.
"""

from __future__ import annotations

from typing import Any

from .citations import CitationBuilder, numbered_markers
from .errors import MalformedResponse, PermanentError, error_text
from .json_fields import as_dict, as_int, as_list, as_object, as_str
from .openai_responses import incomplete_reason, read_messages, read_usage
from .pricing import reported_cost
from .results import Answer

__all__ = ["PERMANENT_CODES", "parse"]

# Run error codes that say the request itself is wrong: retrying cannot help.
PERMANENT_CODES = ("invalid", "bad_request", "content", "policy", "refus", "not_found", "unsupported")


def parse(body: Any, request_id: str | None = None) -> Answer:
    """An Agent API body to an Answer; MalformedResponse / PermanentError (bare detail) otherwise."""
    body = as_object(body)
    rid = request_id or as_str(body.get("id"))
    status = as_str(body.get("status"))
    if status in ("failed", "cancelled"):
        err = as_dict(body.get("error"))
        detail = error_text({"error": err}, fallback=f"run {status}")
        code = " ".join(str(err.get(k, "")) for k in ("code", "type")).lower()
        if any(c in code for c in PERMANENT_CODES):
            raise PermanentError(f"run {status}: {detail}", request_id=rid)
        raise MalformedResponse(f"run {status}: {detail}", request_id=rid)
    output = body.get("output")
    if not isinstance(output, list):
        raise MalformedResponse("response has no output list", request_id=rid)

    msgs = read_messages(output)
    if not msgs.texts and status == "incomplete":
        raise PermanentError(f"empty answer: run incomplete ({incomplete_reason(body)})", request_id=rid)
    if not msgs.texts:
        raise MalformedResponse(f"response has no output_text (status {status})", request_id=rid)
    text = msgs.text

    results: list[dict[str, Any]] = []
    for item in output:
        item = as_dict(item)
        if item.get("type") == "search_results":
            results += [as_dict(r) for r in as_list(item.get("results"))]
    by_id: dict[int, dict[str, Any]] = {}
    for i, r in enumerate(results, start=1):
        n = as_int(r.get("id"))
        by_id.setdefault(n if n is not None else i, r)
    cites = CitationBuilder()
    for a in msgs.annotations:  # an annotation without start_index sits at the start of its part
        cites.add(a.url, a.title, cited=True, at=a.part_offset + (a.start or 0))
    for n, at in numbered_markers(text).items():
        hit = by_id.get(n)
        if hit is not None:
            cites.add(hit.get("url"), hit.get("title"), cited=True, at=at)
    for r in results:
        cites.add(r.get("url"), r.get("title"), cited=False)

    usage = read_usage(body)
    u = as_dict(body.get("usage"))
    searches = as_int(as_dict(as_dict(u.get("tool_calls_details")).get("search_web")).get("invocation"))
    if searches is None:
        searches = sum(1 for it in output if as_dict(it).get("type") == "search_results")
    usage.searches = searches
    answer = Answer(
        text=text,
        model_version=as_str(body.get("model")),
        usage=usage,
        citations=cites.build(),
        request_id=rid,
    )
    answer.metadata["api"] = "agent"
    if status:
        answer.metadata["status"] = status
    if status == "incomplete":
        reason = incomplete_reason(body)
        answer.metadata["incomplete_reason"] = reason if isinstance(reason, str) else "unknown"
    cost = reported_cost(u.get("cost"))
    if cost is not None:
        answer.metadata["provider_cost"] = str(cost)
    return answer
