"""The OpenAI Responses API wire format (``POST /v1/responses``): a decoded body to an :class:`Answer`.

Perplexity's Agent API is Responses-compatible: :func:`read_messages` and :func:`read_usage` read the
parts both share (``message`` items with ``output_text`` parts and ``url_citation`` annotations, and
``usage``); each API's own items (OpenAI's ``web_search_call``, Perplexity's ``search_results``) and
failure wording are read by its own parser (:func:`parse` here, :mod:`.perplexity_agent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .citations import CitationBuilder
from .errors import MalformedResponse, PermanentError, error_text
from .json_fields import as_dict, as_int, as_list, as_object, as_str
from .results import Answer, Usage

__all__ = ["Messages", "UrlCitation", "incomplete_reason", "parse", "read_messages", "read_usage"]


@dataclass(frozen=True, slots=True)
class UrlCitation:
    """One ``url_citation`` annotation, placed in the joined answer text."""

    part_offset: int  # where its output_text part starts in the joined text
    part_length: int
    start: int | None  # the annotation's own start_index within the part, when given
    url: Any
    title: Any


@dataclass(slots=True)
class Messages:
    """The ``message`` items of an ``output`` list."""

    texts: list[str] = field(default_factory=list)
    annotations: list[UrlCitation] = field(default_factory=list)
    refusal: str | None = None  # the last ``refusal`` part

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def read_messages(output: list[Any]) -> Messages:
    """Every ``output_text`` part in order (joined with ``\\n``), its annotations, and any refusal."""
    out = Messages()
    offset = 0  # character offset of the current output_text within the joined answer
    for item in output:
        item = as_dict(item)
        if item.get("type") != "message":
            continue
        for part in as_list(item.get("content")):
            part = as_dict(part)
            ptype = part.get("type")
            if ptype == "output_text" and isinstance(part.get("text"), str):
                text = part["text"]
                if out.texts:
                    offset += 1  # the "\n" join
                for ann in as_list(part.get("annotations")):
                    ann = as_dict(ann)
                    if ann.get("type") == "url_citation":
                        start = as_int(ann.get("start_index"))
                        out.annotations.append(UrlCitation(offset, len(text), start, ann.get("url"), ann.get("title")))
                out.texts.append(text)
                offset += len(text)
            elif ptype == "refusal" and isinstance(part.get("refusal"), str):
                out.refusal = part["refusal"]
    return out


def read_usage(body: dict[str, Any]) -> Usage:
    """``usage.{input_tokens, output_tokens, total_tokens}``."""
    usage = body.get("usage")
    u = as_dict(usage)
    return Usage(
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        total_tokens=as_int(u.get("total_tokens")),
        reported=isinstance(usage, dict),
    )


def incomplete_reason(body: dict[str, Any]) -> Any:
    return as_dict(body.get("incomplete_details")).get("reason")


def parse(body: Any, request_id: str | None = None) -> Answer:
    """An OpenAI Responses body to an Answer; MalformedResponse / PermanentError (bare detail) otherwise."""
    body = as_object(body)
    status = as_str(body.get("status"))
    if status in ("failed", "cancelled"):
        detail = error_text({"error": body.get("error")}, fallback=f"response status {status}")
        raise MalformedResponse(f"response {status}: {detail}", request_id=request_id)
    output = body.get("output")
    if not isinstance(output, list):
        raise MalformedResponse("response has no output list", request_id=request_id)

    msgs = read_messages(output)
    cites = CitationBuilder()
    for a in msgs.annotations:  # an annotation without start_index sits at the end of its part
        cites.add(a.url, a.title, cited=True, at=a.part_offset + (a.start if a.start is not None else a.part_length))
    searches = 0
    queries: list[str] = []
    for item in output:
        item = as_dict(item)
        if item.get("type") != "web_search_call":
            continue
        searches += 1
        action = as_dict(item.get("action"))
        queries += [q for q in as_list(action.get("queries")) if isinstance(q, str)]
        if isinstance(action.get("query"), str) and not action.get("queries"):
            queries.append(action["query"])
        for src in as_list(action.get("sources")):
            src = as_dict(src)
            cites.add(src.get("url"), src.get("title"), cited=False)

    if not msgs.texts and msgs.refusal is not None:
        raise PermanentError(f"refusal: {msgs.refusal}", request_id=request_id)
    if not msgs.texts and status == "incomplete":  # e.g. the token cap went on reasoning: it would again
        raise PermanentError(f"empty answer: response incomplete ({incomplete_reason(body)})", request_id=request_id)
    if not msgs.texts:
        raise MalformedResponse(f"response has no output_text (status {status})", request_id=request_id)

    usage = read_usage(body)
    usage.searches = searches
    answer = Answer(
        text=msgs.text,
        model_version=as_str(body.get("model")),
        usage=usage,
        citations=cites.build(),
        request_id=request_id,
    )
    if isinstance(body.get("id"), str):
        answer.metadata["response_id"] = body["id"]
    if status:
        answer.metadata["status"] = status
    if status == "incomplete":
        reason = incomplete_reason(body)
        answer.metadata["incomplete_reason"] = reason if isinstance(reason, str) else "unknown"
    if queries:
        answer.metadata["search_queries"] = queries
    return answer
