"""The Chat Completions wire format (``POST {base}/chat/completions``): a decoded body to an :class:`Answer`.

OpenAI defined it; xAI, DeepSeek, Mistral, OpenRouter, vLLM / llama.cpp servers and Perplexity Sonar
answer in the same envelope: ``choices[].message.{content, refusal, annotations}``, ``finish_reason``,
``model``, ``id`` and ``usage.{prompt_tokens, completion_tokens, total_tokens}`` (reference: OpenAI's
"chat completion object", as typed by the ``openai`` SDK in ``openai/types/chat/chat_completion.py``,
``chat_completion_message.py`` and ``openai/types/completion_usage.py``).

:func:`read_envelope` and :func:`read_usage` read that shared envelope; Sonar's parser
(:mod:`.perplexity_sonar`) uses them too and keeps its own rules for the text and its ``[n]`` markers.
:func:`parse` is the generic endpoint's reader.  Sources come in two spellings:

* ``message.annotations[{"type": "url_citation", "url_citation": {url, title, start_index, end_index}}]``
  (OpenAI's search models, OpenRouter): the answer cites them; position = ``start_index``.  A flat
  annotation (``{"type": "url_citation", "url", ...}``, the Responses spelling) is read the same way.
* a top-level ``citations: [url, ...]`` (xAI Live Search): every source consulted.  One the answer links
  (an ``http(s)`` URL in the text, markdown link targets included, compared after normalisation) or
  annotates is cited, at its first link; the others were only retrieved (``cited=False``).

URLs that appear only in the text are not sources: a model without search writes links from memory.

Outcomes: no usable choice or ``error`` in the body is a :class:`MalformedResponse` (retry); an empty
answer with ``finish_reason`` ``content_filter`` or a ``refusal`` is a :class:`PermanentError`
("refused": asking again gets the same), and so is an empty answer cut by ``length`` (the token cap was
spent before any text, e.g. on reasoning: it would be again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .citations import CitationBuilder, normalize_url
from .errors import MalformedResponse, PermanentError, error_text
from .json_fields import as_dict, as_int, as_list, as_object, as_str
from .results import Answer, Usage

__all__ = ["Envelope", "linked_urls", "message_text", "parse", "read_envelope", "read_usage"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """The first choice of a chat completion, and the id to report it under."""

    body: dict[str, Any]
    message: dict[str, Any]
    finish_reason: str | None
    request_id: str | None  # the transport's request id, else the completion's ``id``


def read_envelope(body: Any, request_id: str | None = None) -> Envelope:
    """``choices[0]`` of a Chat Completions body; :class:`MalformedResponse` when there is none.

    An ``error`` object in a 200 (OpenRouter relays upstream failures that way; Perplexity too) is
    malformed: the call failed, and another may not.
    """
    body = as_object(body)
    rid = request_id or as_str(body.get("id"))
    if body.get("error") is not None:
        raise MalformedResponse(f"error in 200: {error_text(body)}", request_id=rid)
    choices = as_list(body.get("choices"))
    if not choices:
        raise MalformedResponse("response has no choices", request_id=rid)
    choice = as_dict(choices[0])
    return Envelope(body, as_dict(choice.get("message")), as_str(choice.get("finish_reason")), rid)


def read_usage(body: dict[str, Any]) -> Usage:
    """``usage.{prompt_tokens, completion_tokens, total_tokens}``; ``reported`` when there is a usage object."""
    usage = body.get("usage")
    u = as_dict(usage)
    return Usage(
        input_tokens=as_int(u.get("prompt_tokens")),
        output_tokens=as_int(u.get("completion_tokens")),
        total_tokens=as_int(u.get("total_tokens")),
        reported=isinstance(usage, dict),
    )


def message_text(message: dict[str, Any]) -> str | None:
    """``message.content``: a string, or a list of parts whose ``text`` parts are joined (Mistral's
    reasoning models answer ``[{"type": "thinking", ...}, {"type": "text", "text": ...}]``); else ``None``."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text"
                 and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


_URL = re.compile(r"https?://[^\s<>\"'`\[\]{}|\\^]+", re.IGNORECASE)
_TRAILING = ".,;:!?*_~"


def linked_urls(text: str) -> dict[str, int]:
    """Every ``http(s)`` URL in ``text`` (bare or a markdown link target), normalised -> first offset.

    Sentence punctuation and the closing parentheses of ``[site](url)`` / ``([site](url))`` are not part
    of the URL; a parenthesis the URL opened itself (``/wiki/Foo_(bar)``) is.
    """
    first: dict[str, int] = {}
    for m in _URL.finditer(text):
        url = m.group()
        while url:
            if url[-1] in _TRAILING:
                url = url[:-1]
            elif url[-1] == ")" and url.count(")") > url.count("("):
                url = url[:-1]
            else:
                break
        norm = normalize_url(url)
        if norm:
            first.setdefault(norm, m.start())
    return first


def _annotations(message: dict[str, Any], text_length: int, cites: CitationBuilder) -> int:
    """Add ``url_citation`` annotations as cited sources; returns how many there were."""
    n = 0
    for ann in as_list(message.get("annotations")):
        ann = as_dict(ann)
        if ann.get("type") != "url_citation":
            continue
        src = as_dict(ann.get("url_citation")) or ann  # nested (Chat Completions) or flat (Responses)
        start = as_int(src.get("start_index"))
        cites.add(src.get("url"), src.get("title"), cited=True, at=start if start is not None else text_length)
        n += 1
    return n


def parse(body: Any, request_id: str | None = None) -> Answer:
    """A Chat Completions body to an Answer; MalformedResponse / PermanentError (bare detail) otherwise."""
    env = read_envelope(body, request_id)
    body, msg, finish, rid = env.body, env.message, env.finish_reason, env.request_id
    text = message_text(msg)
    if not text or not text.strip():
        refusal = as_str(msg.get("refusal"))
        if refusal:
            raise PermanentError(f"refused: {refusal}", request_id=rid)
        if finish == "content_filter":
            raise PermanentError("refused: empty answer, finish_reason content_filter", request_id=rid)
        if finish == "length":
            raise PermanentError("empty answer: finish_reason length (the max_tokens cap was spent before any text)",
                                 request_id=rid)
        what = "is empty" if isinstance(text, str) else "has no text"
        raise MalformedResponse(f"choices[0].message.content {what} (finish_reason {finish})", request_id=rid)

    cites = CitationBuilder()
    annotated = _annotations(msg, len(text), cites)
    listed = [u for u in as_list(body.get("citations")) if isinstance(u, str)]
    if listed:
        links = linked_urls(text)
        for url in listed:
            at = links.get(normalize_url(url))
            cites.add(url, cited=at is not None, at=at)  # an annotated URL stays cited either way

    answer = Answer(
        text=text,
        model_version=as_str(body.get("model")),
        usage=read_usage(body),
        citations=cites.build(),
        request_id=rid,
    )
    meta = answer.metadata
    if isinstance(body.get("id"), str):
        meta["response_id"] = body["id"]
    if finish:
        meta["finish_reason"] = finish
    if finish == "length":
        meta["truncated"] = True
    if annotated:
        meta["annotations"] = annotated
    if isinstance(body.get("citations"), list):
        meta["listed_citations"] = len(listed)
    sources = as_int(as_dict(body.get("usage")).get("num_sources_used"))  # xAI Live Search: billed per source
    if sources is not None:
        meta["num_sources_used"] = sources
    return answer
