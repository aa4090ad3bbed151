"""The Gemini ``generateContent`` wire format: a decoded body to an :class:`Answer`.

Keys are read in both spellings (the wire JSON is camelCase, SDK dumps are snake_case); proto3 JSON
omits zero values, so inside an object that is present an absent count or offset is 0.
Grounding: a chunk referenced by a support is cited (ordered by the support's UTF-8 byte offset), an
unreferenced chunk was only retrieved; chunk URIs are Google redirect links whose title usually
names the real site, which becomes the citation's domain until :mod:`.redirects` resolves the link.
"""

from __future__ import annotations

from typing import Any

from .citations import CitationBuilder, domain_from_title, domain_of, normalize_url
from .errors import MalformedResponse, PermanentError
from .json_fields import as_dict, as_int, as_list, as_object, as_str, pick
from .redirects import is_redirect
from .results import Answer, Usage

__all__ = ["REFUSALS", "parse"]

# Finish reasons that mean "the model would not answer": retrying the same prompt will not help.
REFUSALS = frozenset({"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY"})


def parse(body: Any, request_id: str | None = None) -> Answer:
    """A generateContent body to an Answer; MalformedResponse / PermanentError (bare detail) otherwise."""
    body = as_object(body)
    if isinstance(body.get("error"), dict):
        err = body["error"]
        raise MalformedResponse(f"error in 200: {err.get('status')}: {err.get('message')}")
    rid = request_id or as_str(pick(body, "responseId", "response_id"))
    candidates = as_list(body.get("candidates"))
    feedback = as_dict(pick(body, "promptFeedback", "prompt_feedback"))
    block = as_str(pick(feedback, "blockReason", "block_reason"))
    if not candidates:
        if block:
            raise PermanentError(f"prompt blocked: {block}", request_id=rid)
        raise MalformedResponse("response has no candidates", request_id=rid)
    cand = as_dict(candidates[0])
    finish = as_str(pick(cand, "finishReason", "finish_reason"))
    texts = [
        p["text"]
        for p in as_list(as_dict(cand.get("content")).get("parts"))
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]
    text = "".join(texts)
    if not text and finish in REFUSALS:
        raise PermanentError(f"refusal: finishReason {finish}", request_id=rid)
    if not text and finish == "MAX_TOKENS":  # the budget went on thinking: the same call fails again
        raise PermanentError("empty answer: output token limit reached", request_id=rid)
    if not texts:
        raise MalformedResponse(f"candidate has no text (finishReason {finish})", request_id=rid)

    gm = as_dict(pick(cand, "groundingMetadata", "grounding_metadata"))
    chunks = as_list(pick(gm, "groundingChunks", "grounding_chunks"))
    first_byte: dict[int, int] = {}  # chunk index -> earliest UTF-8 byte offset of a support citing it
    for sup in as_list(pick(gm, "groundingSupports", "grounding_supports")):
        sup = as_dict(sup)
        seg = as_dict(sup.get("segment"))
        start = as_int(pick(seg, "startIndex", "start_index")) or 0
        for idx in as_list(pick(sup, "groundingChunkIndices", "grounding_chunk_indices")):
            i = as_int(idx)
            if i is not None and i < len(chunks):
                first_byte[i] = min(first_byte.get(i, start), start)
    cites = CitationBuilder()
    for i in sorted(first_byte, key=lambda i: (first_byte[i], i)):
        _add_chunk(cites, chunks[i], cited=True, at=first_byte[i])
    for i, ch in enumerate(chunks):
        if i not in first_byte:
            _add_chunk(cites, ch, cited=False)
    queries = [q for q in as_list(pick(gm, "webSearchQueries", "web_search_queries")) if isinstance(q, str)]
    grounded = 1 if gm and (queries or chunks) else 0

    usage = pick(body, "usageMetadata", "usage_metadata")
    u = as_dict(usage)
    prompt = as_int(pick(u, "promptTokenCount", "prompt_token_count")) or 0
    tool = as_int(pick(u, "toolUsePromptTokenCount", "tool_use_prompt_token_count")) or 0
    cand_tok = as_int(pick(u, "candidatesTokenCount", "candidates_token_count")) or 0
    thoughts = as_int(pick(u, "thoughtsTokenCount", "thoughts_token_count")) or 0
    answer = Answer(
        text=text,
        model_version=as_str(pick(body, "modelVersion", "model_version")),
        usage=Usage(
            input_tokens=prompt + tool,
            output_tokens=cand_tok + thoughts,
            total_tokens=as_int(pick(u, "totalTokenCount", "total_token_count")),
            reported=isinstance(usage, dict),
            searches=grounded,
        ),
        citations=cites.build(),
        request_id=rid,
    )
    if finish:
        answer.metadata["finish_reason"] = finish
    if finish == "MAX_TOKENS":
        answer.metadata["truncated"] = True
    if queries:
        answer.metadata["search_queries"] = queries
    answer.metadata["grounded"] = bool(grounded)
    return answer


def _add_chunk(cites: CitationBuilder, chunk: Any, *, cited: bool, at: int | None = None) -> None:
    web = as_dict(as_dict(chunk).get("web"))
    uri, title = web.get("uri"), as_str(web.get("title"))
    if not isinstance(uri, str):
        return
    # uri is usually a Google redirect link (resolved later, see .redirects); until then the title names
    # the site when it is a bare domain, and the redirect host is never the domain.
    domain = domain_from_title(title) or ("" if is_redirect(uri) else domain_of(normalize_url(uri)))
    cites.add(uri, title, cited=cited, at=at, domain=domain)
