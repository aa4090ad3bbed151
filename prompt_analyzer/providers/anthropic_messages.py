"""The Anthropic Messages wire format (``POST /v1/messages``): a decoded body to an :class:`Answer`.

``text`` blocks hold the answer (Claude splits one answer into blocks around each citation, so they
are joined with nothing between); their ``web_search_result_location`` citations are cited sources;
``web_search_tool_result`` blocks list what the search retrieved.
"""

from __future__ import annotations

from typing import Any

from .citations import CitationBuilder
from .errors import MalformedResponse, PermanentError, error_text
from .json_fields import as_dict, as_int, as_list, as_object, as_str
from .results import Answer, Usage

__all__ = ["parse"]


def parse(body: Any, request_id: str | None = None) -> Answer:
    """A Messages body to an Answer; MalformedResponse / PermanentError (bare detail) otherwise."""
    body = as_object(body)
    if body.get("type") == "error":  # an error object inside a 200 (seen behind some proxies)
        raise MalformedResponse(f"error in 200: {error_text(body)}", request_id=request_id)
    content = body.get("content")
    if not isinstance(content, list):
        raise MalformedResponse("message has no content list", request_id=request_id)
    stop_reason = as_str(body.get("stop_reason"))

    texts: list[str] = []
    offset = 0
    cites = CitationBuilder()
    retrieved: list[tuple[Any, Any]] = []
    search_errors: list[str] = []
    for block in content:
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = block["text"]
            for c in as_list(block.get("citations")):
                c = as_dict(c)
                if c.get("type") == "web_search_result_location":
                    cites.add(c.get("url"), c.get("title"), cited=True, at=offset)
            texts.append(text)
            offset += len(text)
        elif kind == "web_search_tool_result":
            res = block.get("content")
            if isinstance(res, list):
                for r in res:
                    r = as_dict(r)
                    if r.get("type", "web_search_result") == "web_search_result":
                        retrieved.append((r.get("url"), r.get("title")))
            elif isinstance(res, dict) and isinstance(res.get("error_code"), str):
                search_errors.append(res["error_code"])
    for url, title in retrieved:
        cites.add(url, title, cited=False)

    if stop_reason == "refusal":
        raise PermanentError("refusal: the model declined to answer", request_id=request_id)
    if not texts and stop_reason == "max_tokens":
        raise PermanentError("empty answer: max_tokens reached before any text", request_id=request_id)
    if not texts:
        raise MalformedResponse(f"message has no text block (stop_reason {stop_reason})", request_id=request_id)

    usage = body.get("usage")
    u = as_dict(usage)
    inp, out = as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))
    answer = Answer(
        text="".join(texts),
        model_version=as_str(body.get("model")),
        usage=Usage(
            input_tokens=inp,
            output_tokens=out,
            total_tokens=inp + out if inp is not None and out is not None else None,
            reported=isinstance(usage, dict),
            searches=as_int(as_dict(u.get("server_tool_use")).get("web_search_requests")) or 0,
        ),
        citations=cites.build(),
        request_id=request_id,
    )
    if isinstance(body.get("id"), str):
        answer.metadata["response_id"] = body["id"]
    if stop_reason:
        answer.metadata["stop_reason"] = stop_reason
    if stop_reason == "max_tokens":
        answer.metadata["truncated"] = True
    if search_errors:
        answer.metadata["search_errors"] = search_errors
    cache_read = as_int(u.get("cache_read_input_tokens"))
    if cache_read:
        answer.metadata["cache_read_input_tokens"] = cache_read
    return answer
