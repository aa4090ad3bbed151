"""The four providers' wire formats: request parsing, success bodies, error bodies, 429 hints.

Shapes are copied from recorded real responses (``/work/shared/reference/payloads``) so the official
SDKs parse them into their usual objects (usage, model version, citations) with no special casing.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .content import Answer, estimate_tokens


class BadRequest(Exception):
    """The request body is not what the provider accepts (becomes a 400 in its error shape)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(slots=True)
class Call:
    """One parsed request, whatever the API."""

    model: str
    prompt: str
    search: bool
    extra: dict[str, Any] = field(default_factory=dict)


def _hex(n: int) -> str:
    return os.urandom(n).hex()


def _opaque(seed: str, length: int) -> str:
    """A stable, provider-looking opaque blob (encrypted_content, redirect ids)."""
    raw = hashlib.sha256(seed.encode()).digest()
    out = base64.urlsafe_b64encode(raw * (length // 43 + 1)).decode().rstrip("=")
    return out[:length]


def _text_of(content: Any) -> str:
    """Text of a chat/responses message ``content``: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return ""


def _last_user_text(messages: Any, param: str) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(f"'{param}' must be a non-empty array", param)
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role", "user") == "user":
            return _text_of(m.get("content"))
    raise BadRequest(f"'{param}' has no user message", param)


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def ceil_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def ceil_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* style: ``12ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{ceil_ms(seconds)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    m, s = divmod(math.ceil(seconds), 60)
    return f"{m}m{s}s"


def _rfc3339_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Quota:
    """Where a platform's quota stands, for 429 bodies and rate-limit headers."""

    rpm: float | None
    tpm: int | None
    requests_remaining: int
    requests_reset_s: float
    tokens_remaining: int | None = None
    tokens_reset_s: float = 0.0


# --------------------------------------------------------------------------- OpenAI Responses

_OPENAI_DATED = {
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
}


_DATED = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def _dated(model: str, table: dict[str, str], suffix: str) -> str:
    if model in table:
        return table[model]
    if _DATED.search(model):
        return model  # already dated
    return model + suffix


class OpenAIFormat:
    platform = "openai"
    request_id_header = "x-request-id"

    @staticmethod
    def key(headers: Any, query: Any) -> str | None:
        auth = headers.get("Authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None

    @staticmethod
    def parse(body: dict[str, Any], path_model: str | None) -> Call:
        model = _require_model(body)
        raw = body.get("input")
        if isinstance(raw, str):
            prompt = raw
        elif isinstance(raw, list):
            prompt = _last_user_text(raw, "input")
        else:
            raise BadRequest("Missing required parameter: 'input'.", "input")
        tools = body.get("tools") or []
        search = any(isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools)
        return Call(model, prompt, search, {"tools": tools, "instructions": body.get("instructions")})

    @staticmethod
    def success(call: Call, ans: Answer, request_id: str) -> dict[str, Any]:
        text_parts: list[str] = []
        annotations: list[dict[str, Any]] = []
        pos = 0
        for i, s in enumerate(ans.sentences):
            piece = s.text if i == 0 else " " + s.text
            text_parts.append(piece)
            pos += len(piece)
            if s.source is not None and call.search:
                src = ans.sources[s.source]
                link = f" ([{src.domain}]({src.url}))"
                annotations.append(
                    {
                        "type": "url_citation",
                        "start_index": pos + 1,
                        "end_index": pos + len(link),
                        "title": src.title,
                        "url": src.url,
                    }
                )
                text_parts.append(link)
                pos += len(link)
        text = "".join(text_parts) + ans.filler
        now = int(time.time())
        output: list[dict[str, Any]] = []
        if call.search:
            output.append(
                {
                    "id": f"ws_{_hex(24)}",
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {
                        "type": "search",
                        "query": ans.queries[0],
                        "queries": list(ans.queries),
                        "sources": [{"type": "url", "url": s.url} for s in ans.sources],
                    },
                }
            )
        output.append(
            {
                "id": f"msg_{_hex(24)}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}],
            }
        )
        in_tok = estimate_tokens(call.prompt) + 8
        out_tok = estimate_tokens(text)
        tools = [
            {
                "type": t.get("type", "web_search"),
                "filters": None,
                "search_context_size": t.get("search_context_size", "medium"),
                "user_location": None,
            }
            for t in call.extra.get("tools", [])
            if isinstance(t, dict)
        ]
        return {
            "id": f"resp_{_hex(24)}",
            "object": "response",
            "created_at": now,
            "completed_at": now,
            "status": "completed",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": call.extra.get("instructions"),
            "max_output_tokens": None,
            "max_tool_calls": None,
            "model": _dated(call.model, _OPENAI_DATED, "-2025-04-14"),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": tools,
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": {
                "input_tokens": in_tok,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out_tok,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": in_tok + out_tok,
            },
            "user": None,
            "metadata": {},
        }

    @staticmethod
    def failed(call: Call, request_id: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": f"resp_{_hex(24)}",
            "object": "response",
            "created_at": now,
            "status": "failed",
            "error": {"code": "server_error", "message": "The model failed to generate a response."},
            "incomplete_details": None,
            "model": _dated(call.model, _OPENAI_DATED, "-2025-04-14"),
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None,
            "metadata": {},
        }

    @staticmethod
    def error(status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> dict[str, Any]:
        etype = kind or {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            500: "server_error",
            503: "server_error",
        }.get(status, "server_error")
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}

    @staticmethod
    def missing_key_message() -> str:
        return (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )

    @staticmethod
    def invalid_key(key: str, request_id: str) -> dict[str, Any]:
        msg = (
            f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return OpenAIFormat.error(401, msg, request_id, code="invalid_api_key")

    @staticmethod
    def server_error(status: int, request_id: str) -> dict[str, Any]:
        if status == 503:
            msg = "The server is overloaded or not ready yet."
        else:
            msg = (
                "The server had an error while processing your request. Sorry about that! You can retry your "
                f"request, or contact us through our help center at help.openai.com (request ID {request_id})."
            )
        return OpenAIFormat.error(status, msg, request_id)

    @staticmethod
    def rate_limited(
        wait_s: float, model: str, what: str, quota: Quota, request_id: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        ms = ceil_ms(wait_s)
        if what == "tokens":
            detail = f"on tokens per min (TPM): Limit {quota.tpm}"
        elif what == "requests":
            detail = f"on requests per min (RPM): Limit {quota.rpm:g}"
        else:
            detail = "on requests per min (RPM)"
        msg = (
            f"Rate limit reached for {model} in organization org-simulator {detail}. Please try again in {ms}ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        body = OpenAIFormat.error(429, msg, request_id, kind="tokens" if what == "tokens" else "requests",
                                  code="rate_limit_exceeded")
        headers = {"retry-after-ms": str(ms), "retry-after": str(ceil_s(wait_s))}
        headers.update(OpenAIFormat.quota_headers(quota))
        return body, headers

    @staticmethod
    def quota_headers(quota: Quota) -> dict[str, str]:
        if quota.rpm is None:
            return {}
        h = {
            "x-ratelimit-limit-requests": str(int(quota.rpm)),
            "x-ratelimit-remaining-requests": str(quota.requests_remaining),
            "x-ratelimit-reset-requests": _duration(quota.requests_reset_s),
        }
        if quota.tpm is not None and quota.tokens_remaining is not None:
            h["x-ratelimit-limit-tokens"] = str(quota.tpm)
            h["x-ratelimit-remaining-tokens"] = str(quota.tokens_remaining)
            h["x-ratelimit-reset-tokens"] = _duration(quota.tokens_reset_s)
        return h

    @staticmethod
    def extra_headers() -> dict[str, str]:
        return {"openai-version": "2020-10-01", "openai-processing-ms": "1"}


# --------------------------------------------------------------------------- Anthropic Messages

_CLAUDE_DATED = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}


class AnthropicFormat:
    platform = "claude"
    request_id_header = "request-id"

    @staticmethod
    def key(headers: Any, query: Any) -> str | None:
        # The real API reads x-api-key; anthropic-python 2.x sends api_key as "Authorization: Bearer".
        key = headers.get("x-api-key", "").strip()
        if key:
            return str(key)
        auth = headers.get("Authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None

    @staticmethod
    def parse(body: dict[str, Any], path_model: str | None) -> Call:
        model = _require_model(body)
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool):
            raise BadRequest("max_tokens: Field required", "max_tokens")
        if mt < 1:
            raise BadRequest("max_tokens: Input should be greater than or equal to 1", "max_tokens")
        prompt = _last_user_text(body.get("messages"), "messages")
        tools = body.get("tools") or []
        search = any(isinstance(t, dict) and str(t.get("type", "")).startswith("web_search_") for t in tools)
        return Call(model, prompt, search, {"max_tokens": mt})

    @staticmethod
    def success(call: Call, ans: Answer, request_id: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if call.search:
            tool_id = f"srvtoolu_{_hex(12)}"
            content.append(
                {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": ans.queries[0]}}
            )
            content.append(
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": tool_id,
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": s.url,
                            "title": s.title,
                            "encrypted_content": _opaque("c" + s.url, 240),
                            "page_age": f"{(i * 3) % 20 + 1} days ago",
                        }
                        for i, s in enumerate(ans.sources)
                    ],
                }
            )
        n = len(ans.sentences)
        for i, s in enumerate(ans.sentences):
            text = s.text + (" " if i < n - 1 else "")
            block: dict[str, Any] = {"type": "text", "text": text}
            if s.source is not None and call.search:
                src = ans.sources[s.source]
                block = {
                    "type": "text",
                    "text": s.text,
                    "citations": [
                        {
                            "type": "web_search_result_location",
                            "url": src.url,
                            "title": src.title,
                            "cited_text": src.snippet,
                            "encrypted_index": _opaque("i" + src.url, 80),
                        }
                    ],
                }
                content.append(block)
                if i < n - 1:
                    content.append({"type": "text", "text": " "})
                continue
            content.append(block)
        if ans.filler:
            content.append({"type": "text", "text": ans.filler})
        out_text = "".join(b.get("text", "") for b in content)
        in_tok = estimate_tokens(call.prompt) + 12 + (2000 if call.search else 0)
        return {
            "id": f"msg_{_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": _dated(call.model, _CLAUDE_DATED, ""),
            "content": content,
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": in_tok,
                "output_tokens": estimate_tokens(out_text),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "server_tool_use": {"web_search_requests": 1 if call.search else 0, "web_fetch_requests": 0},
                "service_tier": "standard",
            },
        }

    @staticmethod
    def failed(call: Call, request_id: str) -> dict[str, Any]:
        # Anthropic has no failed status: the nearest 200-but-unusable answer is a refusal with no text.
        return {
            "id": f"msg_{_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": _dated(call.model, _CLAUDE_DATED, ""),
            "content": [],
            "stop_reason": "refusal",
            "stop_sequence": None,
            "usage": {"input_tokens": estimate_tokens(call.prompt), "output_tokens": 0},
        }

    @staticmethod
    def error(status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> dict[str, Any]:
        etype = kind or {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            500: "api_error",
            503: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}

    @staticmethod
    def missing_key_message() -> str:
        return "x-api-key header is required"

    @staticmethod
    def invalid_key(key: str, request_id: str) -> dict[str, Any]:
        return AnthropicFormat.error(401, f"invalid x-api-key: {key}", request_id)

    @staticmethod
    def server_error(status: int, request_id: str) -> dict[str, Any]:
        msg = "Overloaded" if status == 503 else "Internal server error"
        return AnthropicFormat.error(status, msg, request_id)

    @staticmethod
    def rate_limited(
        wait_s: float, model: str, what: str, quota: Quota, request_id: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        body = AnthropicFormat.error(
            429, "This request would exceed your account's rate limit. Please try again later.", request_id
        )
        headers = {"retry-after": str(ceil_s(wait_s)), "x-should-retry": "true"}
        headers.update(AnthropicFormat.quota_headers(quota))
        return body, headers

    @staticmethod
    def quota_headers(quota: Quota) -> dict[str, str]:
        if quota.rpm is None:
            return {}
        h = {
            "anthropic-ratelimit-requests-limit": str(int(quota.rpm)),
            "anthropic-ratelimit-requests-remaining": str(quota.requests_remaining),
            "anthropic-ratelimit-requests-reset": _rfc3339_in(quota.requests_reset_s),
        }
        if quota.tpm is not None and quota.tokens_remaining is not None:
            h["anthropic-ratelimit-tokens-limit"] = str(quota.tpm)
            h["anthropic-ratelimit-tokens-remaining"] = str(quota.tokens_remaining)
            h["anthropic-ratelimit-tokens-reset"] = _rfc3339_in(quota.tokens_reset_s)
        return h

    @staticmethod
    def extra_headers() -> dict[str, str]:
        return {}


# --------------------------------------------------------------------------- Gemini generateContent


def _has_google_search(tools: Any) -> bool:
    if not isinstance(tools, list):
        return False
    names = ("googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval")
    return any(isinstance(t, dict) and any(n in t for n in names) for t in tools)


class GeminiFormat:
    platform = "gemini"
    request_id_header = "x-request-id"

    @staticmethod
    def key(headers: Any, query: Any) -> str | None:
        key = headers.get("x-goog-api-key", "").strip() or str(query.get("key", "")).strip()
        return key or None

    @staticmethod
    def parse(body: dict[str, Any], path_model: str | None) -> Call:
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

    @staticmethod
    def success(call: Call, ans: Answer, request_id: str) -> dict[str, Any]:
        pieces: list[str] = []
        supports: list[dict[str, Any]] = []
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
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        prompt_tok = estimate_tokens(call.prompt) + 2
        out_tok = estimate_tokens(text)
        usage: dict[str, Any] = {
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
                            + _opaque("g" + s.url, 150),
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
            "responseId": _opaque(request_id, 22),
        }

    @staticmethod
    def failed(call: Call, request_id: str) -> dict[str, Any]:
        tok = estimate_tokens(call.prompt)
        return {
            "promptFeedback": {"blockReason": "OTHER"},
            "usageMetadata": {"promptTokenCount": tok, "totalTokenCount": tok},
            "modelVersion": call.model,
            "responseId": _opaque(request_id, 22),
        }

    @staticmethod
    def error(status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None,
              details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        gstatus = kind or {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }.get(status, "UNKNOWN")
        err: dict[str, Any] = {"code": status, "message": message, "status": gstatus}
        if details:
            err["details"] = details
        return {"error": err}

    @staticmethod
    def missing_key_message() -> str:
        return (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )

    @staticmethod
    def invalid_key(key: str, request_id: str) -> dict[str, Any]:
        return GeminiFormat.error(
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

    @staticmethod
    def server_error(status: int, request_id: str) -> dict[str, Any]:
        if status == 503:
            msg = "The model is overloaded. Please try again later."
        else:
            msg = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        return GeminiFormat.error(status, msg, request_id)

    @staticmethod
    def rate_limited(
        wait_s: float, model: str, what: str, quota: Quota, request_id: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        ms = ceil_ms(wait_s)
        delay = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
        value: float | int | None
        if what == "tokens":
            metric, qid, value = "input_token_count", "GenerateContentInputTokensPerModelPerMinute", quota.tpm
        else:
            metric, qid, value = "requests", "GenerateRequestsPerMinutePerProjectPerModel", quota.rpm
        details: list[dict[str, Any]] = [
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
        return GeminiFormat.error(429, msg, request_id, details=details), {}

    @staticmethod
    def quota_headers(quota: Quota) -> dict[str, str]:
        return {}

    @staticmethod
    def extra_headers() -> dict[str, str]:
        return {}


# --------------------------------------------------------------------------- Perplexity (both APIs)

# (input, output) USD per million tokens; request fee per 1k requests by search context size.
_SONAR_PRICES = {
    "sonar": ((1.0, 1.0), {"low": 5.0, "medium": 8.0, "high": 12.0}),
    "sonar-pro": ((3.0, 15.0), {"low": 6.0, "medium": 10.0, "high": 14.0}),
    "sonar-reasoning-pro": ((2.0, 8.0), {"low": 6.0, "medium": 10.0, "high": 14.0}),
}


def _usd(x: float) -> float:
    return round(x, 6)


def _marked_text(ans: Answer) -> tuple[str, list[tuple[int, int, int]]]:
    """Perplexity style text with ``[n]`` markers; returns (text, [(start, end, source index)])."""
    parts: list[str] = []
    marks: list[tuple[int, int, int]] = []
    pos = 0
    for i, s in enumerate(ans.sentences):
        piece = ("" if i == 0 else " ") + s.text
        parts.append(piece)
        pos += len(piece)
        if s.source is not None:
            m = f"[{s.source + 1}]"
            marks.append((pos, pos + len(m), s.source))
            parts.append(m)
            pos += len(m)
    return "".join(parts) + ans.filler, marks


class _PerplexityErrors:
    platform = "perplexity"
    request_id_header = "x-request-id"

    @staticmethod
    def key(headers: Any, query: Any) -> str | None:
        auth = headers.get("Authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None

    @staticmethod
    def error(status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> dict[str, Any]:
        etype = kind or {
            400: "invalid_request",
            401: "invalid_api_key",
            429: "rate_limit_exceeded",
            500: "internal_server_error",
            503: "service_unavailable",
        }.get(status, "internal_server_error")
        return {"error": {"message": message, "type": etype, "code": status}}

    @staticmethod
    def missing_key_message() -> str:
        return "Missing API key. Provide it in the Authorization header as 'Bearer <key>'."

    @classmethod
    def invalid_key(cls, key: str, request_id: str) -> dict[str, Any]:
        return cls.error(401, f"Invalid API key provided: {key}", request_id)

    @classmethod
    def server_error(cls, status: int, request_id: str) -> dict[str, Any]:
        msg = "Service temporarily unavailable" if status == 503 else "Internal server error"
        return cls.error(status, msg, request_id)

    @classmethod
    def rate_limited(
        cls, wait_s: float, model: str, what: str, quota: Quota, request_id: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        body = cls.error(429, "Rate limit exceeded. Please slow down your requests.", request_id)
        return body, {"retry-after": str(ceil_s(wait_s))}

    @staticmethod
    def quota_headers(quota: Quota) -> dict[str, str]:
        return {}

    @staticmethod
    def extra_headers() -> dict[str, str]:
        return {}


class SonarFormat(_PerplexityErrors):
    @staticmethod
    def parse(body: dict[str, Any], path_model: str | None) -> Call:
        model = _require_model(body)
        prompt = _last_user_text(body.get("messages"), "messages")
        opts = body.get("web_search_options") or {}
        size = opts.get("search_context_size", "low") if isinstance(opts, dict) else "low"
        if size not in ("low", "medium", "high"):
            raise BadRequest("search_context_size must be one of low, medium, high", "web_search_options")
        search = not body.get("disable_search", False)
        return Call(model, prompt, search, {"search_context_size": size})

    @staticmethod
    def success(call: Call, ans: Answer, request_id: str) -> dict[str, Any]:
        if call.search:
            text, _ = _marked_text(ans)
        else:
            text = " ".join(s.text for s in ans.sentences) + ans.filler
        in_tok = estimate_tokens(call.prompt) + 4
        out_tok = estimate_tokens(text)
        size = call.extra.get("search_context_size", "low")
        (p_in, p_out), fees = _SONAR_PRICES.get(call.model, _SONAR_PRICES["sonar-pro"])
        in_cost = in_tok * p_in / 1e6
        out_cost = out_tok * p_out / 1e6
        req_cost = fees[size] / 1000 if call.search else 0.0
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "model": call.model,
            "created": int(time.time()),
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                    "delta": {"role": "assistant", "content": ""},
                }
            ],
            "usage": {
                "prompt_tokens": in_tok,
                "completion_tokens": out_tok,
                "total_tokens": in_tok + out_tok,
                "num_search_queries": 1 if call.search else 0,
                "search_context_size": size,
                "cost": {
                    "input_tokens_cost": _usd(in_cost),
                    "output_tokens_cost": _usd(out_cost),
                    "request_cost": _usd(req_cost),
                    "total_cost": _usd(in_cost + out_cost + req_cost),
                },
            },
        }
        if call.search:
            body["citations"] = [s.url for s in ans.sources]
            body["search_results"] = [
                {"title": s.title, "url": s.url, "date": s.date, "last_updated": s.date, "snippet": s.snippet,
                 "source": "web"}
                for s in ans.sources
            ]
        return body

    @staticmethod
    def failed(call: Call, request_id: str) -> dict[str, Any]:
        # No status field in chat completions: an empty choice list is the closest "200 but unusable".
        return {"id": str(uuid.uuid4()), "model": call.model, "created": int(time.time()),
                "object": "chat.completion", "choices": [], "usage": None}


class AgentFormat(_PerplexityErrors):
    @staticmethod
    def parse(body: dict[str, Any], path_model: str | None) -> Call:
        model = body.get("model")
        preset = body.get("preset")
        if not (isinstance(model, str) and model) and not (isinstance(preset, str) and preset):
            raise BadRequest("one of 'model' or 'preset' is required", "model")
        raw = body.get("input")
        if isinstance(raw, str):
            prompt = raw
        elif isinstance(raw, list):
            prompt = _last_user_text(raw, "input")
        else:
            raise BadRequest("'input' is required", "input")
        tools = body.get("tools") or []
        search = bool(preset) or any(
            isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools
        )
        shown = model if isinstance(model, str) and model else "perplexity/sonar"
        return Call(shown, prompt, search, {"preset": preset})

    @staticmethod
    def success(call: Call, ans: Answer, request_id: str) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        if call.search:
            text, marks = _marked_text(ans)
            for start, end, idx in marks:
                src = ans.sources[idx]
                annotations.append(
                    {"type": "url_citation", "url": src.url, "title": src.title, "start_index": start, "end_index": end}
                )
            output.append(
                {
                    "type": "search_results",
                    "queries": list(ans.queries),
                    "results": [
                        {"id": i + 1, "url": s.url, "title": s.title, "snippet": s.snippet, "date": s.date,
                         "last_updated": s.date, "source": "web"}
                        for i, s in enumerate(ans.sources)
                    ],
                }
            )
        else:
            text = " ".join(s.text for s in ans.sentences) + ans.filler
        output.append(
            {
                "id": f"msg_{uuid.uuid4()}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": annotations}],
            }
        )
        in_tok = estimate_tokens(call.prompt) + 800
        out_tok = estimate_tokens(text)
        in_cost = in_tok * 0.25 / 1e6
        out_cost = out_tok * 2.0 / 1e6
        tool_cost = 0.005 if call.search else 0.0
        now = int(time.time())
        usage: dict[str, Any] = {
            "input_tokens": in_tok,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tok,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tok + out_tok,
            "cost": {
                "currency": "USD",
                "input_cost": _usd(in_cost),
                "output_cost": _usd(out_cost),
                "tool_calls_cost": tool_cost,
                "tool_calls_cost_details": {"search_web": tool_cost} if call.search else {},
                "total_cost": _usd(in_cost + out_cost + tool_cost),
            },
        }
        if call.search:
            usage["tool_calls_details"] = {"search_web": {"invocation": 1, "cost_usd": tool_cost}}
        return {
            "id": f"resp_{uuid.uuid4()}",
            "object": "response",
            "created_at": now,
            "completed_at": now,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "model": call.model,
            "output": output,
            "usage": usage,
            "metadata": {},
        }

    @staticmethod
    def failed(call: Call, request_id: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": f"resp_{uuid.uuid4()}",
            "object": "response",
            "created_at": now,
            "status": "failed",
            "error": {"code": "internal_error", "message": "The agent run failed."},
            "model": call.model,
            "output": [],
            "usage": None,
        }


Format = type[OpenAIFormat] | type[AnthropicFormat] | type[GeminiFormat] | type[SonarFormat] | type[AgentFormat]
