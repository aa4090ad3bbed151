"""Gemini API: ``POST {base}/{v1|v1beta}/models/{model}:generateContent`` (google-genai ``generate_content``).

Grounding is ``tools=[{"googleSearch": {}}]``: ``groundingMetadata`` lists the chunks retrieved (redirect
URIs, bare-domain titles) and the supports citing them, with UTF-8 byte offsets.  A 429 carries its wait
in the body (``google.rpc.RetryInfo``), not in headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..content import Answer, estimate_tokens
from .base import BadRequest, BodyAndHeaders, Call, Json, Quota, WireFormat, ceil_ms, opaque

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
            candidate["groundingMetadata"] = {
                "groundingChunks": [
                    {
                        "web": {
                            "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
                            + "AUZIYQ"
                            + opaque("g" + s.url, 150),
                            "title": s.domain,
                        }
                    }
                    for s in ans.sources
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
