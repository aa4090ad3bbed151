"""Gemini API: ``POST {base}/{v1|v1beta}/models/{model}:generateContent`` (google-genai ``generate_content``).

Grounding is ``tools=[{"googleSearch": {}}]``: ``groundingMetadata`` lists the chunks retrieved and the
supports citing them, with UTF-8 byte offsets.  Chunk URIs are grounding redirect links, as Gemini's are:
``{origin}/grounding-api-redirect/<token>`` on the simulator's own address (``call.extra["origin"]``),
which answers a 302 to the source's page (the server's redirect endpoint, :func:`redirect_target`).
Titles are mostly bare domains, but not always (Gemini too titles some sources with a phrase): every
third source from the second on carries its page title.  ``[[sim:redirect=KIND]]`` in a prompt makes the
first source's link misbehave: ``404`` (an expired link), ``500``, ``hang`` (never answers), ``slow``
(answers after :data:`SLOW_REDIRECT_S`) or ``nolocation`` (a 302 without ``Location``).
A 429 carries its wait in the body (``google.rpc.RetryInfo``), not in headers.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from ..content import Answer, Source, estimate_tokens
from .base import BadRequest, BodyAndHeaders, Call, Json, Quota, WireFormat, ceil_ms, opaque

REDIRECT_PREFIX = "/grounding-api-redirect/"
REAL_ORIGIN = "https://vertexaisearch.cloud.google.com"  # where Gemini's links point (no origin known)
REDIRECT_KINDS = frozenset({"ok", "404", "500", "hang", "slow", "nolocation"})
SLOW_REDIRECT_S = 1.0
_TOKEN_HEAD = "AUZIYQ"  # how Gemini's tokens begin
_REDIRECT_MARKER = re.compile(r"\[\[sim:redirect=([a-z0-9]+)\]\]")


def redirect_link(origin: str | None, source: Source, kind: str = "ok") -> str:
    """The grounding link standing for ``source``: its target and behaviour travel in the token, so the
    redirect endpoint needs no state."""
    payload = base64.urlsafe_b64encode(f"{kind}|{source.url}".encode()).decode().rstrip("=")
    return f"{origin or REAL_ORIGIN}{REDIRECT_PREFIX}{_TOKEN_HEAD}{payload}"


def redirect_target(token: str) -> tuple[str, str] | None:
    """``(kind, target URL)`` of a link's token; None for a token this simulator did not make."""
    if not token.startswith(_TOKEN_HEAD):
        return None
    data = token[len(_TOKEN_HEAD):]
    try:
        kind, sep, url = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode().partition("|")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not sep or kind not in REDIRECT_KINDS or not url.startswith(("http://", "https://")):
        return None
    return kind, url


def _first_link_kind(prompt: str) -> str:
    m = _REDIRECT_MARKER.search(prompt)
    return m.group(1) if m and m.group(1) in REDIRECT_KINDS else "ok"

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _has_google_search(tools: Any) -> bool:
    if not isinstance(tools, list):
        return False
    names = ("googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval")
    return any(isinstance(t, dict) and any(n in t for n in names) for t in tools)


class GeminiGenerateContent:
    platform = "gemini"
    request_id_header = "x-request-id"

    def key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        key = headers.get("x-goog-api-key", "").strip() or str(query.get("key", "")).strip()
        return key or None

    def parse(self, body: Json, path_model: str | None) -> Call:
        model = (path_model or "").removeprefix("models/")
        if not model:
            raise BadRequest("model is required", "model")
        contents = body.get("contents")
        if isinstance(contents, dict):
            contents = [contents]
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified", "contents")
        prompt = ""
        for c in reversed(contents):
            if isinstance(c, dict) and c.get("role", "user") == "user":
                prompt = "\n".join(
                    p["text"] for p in c.get("parts") or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
                break
        return Call(model, prompt, _has_google_search(body.get("tools")))

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        pieces: list[str] = []
        supports: list[Json] = []
        byte_pos = 0
        for i, s in enumerate(ans.sentences):
            sep = "" if i == 0 else " "
            pieces.append(sep + s.text)
            start = byte_pos + len(sep.encode())
            byte_pos += len((sep + s.text).encode())
            if s.source is not None and call.search:
                supports.append(
                    {
                        "segment": {"startIndex": start, "endIndex": byte_pos, "text": s.text},
                        "groundingChunkIndices": [s.source],
                    }
                )
        text = "".join(pieces) + ans.filler
        candidate: Json = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        prompt_tok = estimate_tokens(call.prompt) + 2
        out_tok = estimate_tokens(text)
        usage: Json = {
            "promptTokenCount": prompt_tok,
            "candidatesTokenCount": out_tok,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tok}],
        }
        total = prompt_tok + out_tok
        if call.search:
            origin = call.extra.get("origin")
            first_kind = _first_link_kind(call.prompt)
            candidate["groundingMetadata"] = {
                "groundingChunks": [
                    {
                        "web": {
                            "uri": redirect_link(origin, s, first_kind if i == 0 else "ok"),
                            "title": s.title if i % 3 == 1 else s.domain,
                        }
                    }
                    for i, s in enumerate(ans.sources)
                ],
                "groundingSupports": supports,
                "webSearchQueries": list(ans.queries),
                "searchEntryPoint": {"renderedContent": "<style>.container{}</style><div class=\"container\"></div>"},
            }
            tool_tok = 60 + 25 * len(ans.sources)
            usage["toolUsePromptTokenCount"] = tool_tok
            usage["toolUsePromptTokensDetails"] = [{"modality": "TEXT", "tokenCount": tool_tok}]
            total += tool_tok
        usage["totalTokenCount"] = total
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": call.model,
            "responseId": opaque(request_id, 22),
        }

    def failed(self, call: Call, request_id: str) -> Json:
        tok = estimate_tokens(call.prompt)
        return {
            "promptFeedback": {"blockReason": "OTHER"},
            "usageMetadata": {"promptTokenCount": tok, "totalTokenCount": tok},
            "modelVersion": call.model,
            "responseId": opaque(request_id, 22),
        }

    def error(self, status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None, details: list[Json] | None = None) -> Json:
        err: Json = {"code": status, "message": message, "status": kind or _STATUSES.get(status, "UNKNOWN")}
        if details:
            err["details"] = details
        return {"error": err}

    def missing_key_message(self) -> str:
        return (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )

    def invalid_key(self, key: str, request_id: str) -> Json:
        return self.error(
            401,
            f"API key not valid. Please pass a valid API key. (key: {key})",
            request_id,
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )

    def server_error(self, status: int, request_id: str) -> Json:
        if status == 503:
            msg = "The model is overloaded. Please try again later."
        else:
            msg = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        return self.error(status, msg, request_id)

    def rate_limited(self, wait_s: float, model: str, what: str, quota: Quota, request_id: str) -> BodyAndHeaders:
        ms = ceil_ms(wait_s)
        delay = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
        value: float | int | None
        if what == "tokens":
            metric, qid, value = "input_token_count", "GenerateContentInputTokensPerModelPerMinute", quota.tpm
        else:
            metric, qid, value = "requests", "GenerateRequestsPerMinutePerProjectPerModel", quota.rpm
        details: list[Json] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": f"generativelanguage.googleapis.com/generate_content_{metric}",
                        "quotaId": qid,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": f"{value:g}" if isinstance(value, float) else str(value),
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ]
        msg = (
            "You exceeded your current quota, please check your plan and billing details. For more information "
            f"on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in {delay}."
        )
        return self.error(429, msg, request_id, details=details), {}

    def quota_headers(self, quota: Quota) -> dict[str, str]:
        return {}

    def extra_headers(self) -> dict[str, str]:
        return {}

    def models_list(self, models: list[str]) -> Json:
        return {"models": [{"name": f"models/{m}", "version": "001", "displayName": m,
                            "supportedGenerationMethods": ["generateContent", "countTokens"]} for m in models]}


FORMAT: WireFormat = GeminiGenerateContent()
