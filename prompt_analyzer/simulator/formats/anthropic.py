"""Anthropic Messages API: ``POST {base}/v1/messages`` (``client.messages.create``).

Search is the ``web_search_20250305`` server tool: ``server_tool_use`` and ``web_search_tool_result``
blocks (retrieved), then ``text`` blocks whose ``citations`` name what the answer cites.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ..content import Answer, estimate_tokens
from .base import (
    BadRequest,
    BodyAndHeaders,
    Call,
    Json,
    Quota,
    WireFormat,
    bearer_key,
    ceil_s,
    dated,
    last_user_text,
    new_id,
    opaque,
    require_model,
)

_DATED_MODELS = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def _rfc3339_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class AnthropicMessages:
    platform = "claude"
    request_id_header = "request-id"

    def key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        # The real API reads x-api-key; anthropic-python 2.x sends api_key as "Authorization: Bearer".
        key = headers.get("x-api-key", "").strip()
        return key or bearer_key(headers)

    def parse(self, body: Json, path_model: str | None) -> Call:
        model = require_model(body)
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool):
            raise BadRequest("max_tokens: Field required", "max_tokens")
        if mt < 1:
            raise BadRequest("max_tokens: Input should be greater than or equal to 1", "max_tokens")
        prompt = last_user_text(body.get("messages"), "messages")
        tools = body.get("tools") or []
        search = any(isinstance(t, dict) and str(t.get("type", "")).startswith("web_search_") for t in tools)
        return Call(model, prompt, search, {"max_tokens": mt})

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        content: list[Json] = []
        if call.search:
            tool_id = f"srvtoolu_{new_id(12)}"
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
                            "encrypted_content": opaque("c" + s.url, 240),
                            "page_age": f"{(i * 3) % 20 + 1} days ago",
                        }
                        for i, s in enumerate(ans.sources)
                    ],
                }
            )
        n = len(ans.sentences)
        for i, s in enumerate(ans.sentences):
            if s.source is not None and call.search:
                src = ans.sources[s.source]
                citation = {
                    "type": "web_search_result_location",
                    "url": src.url,
                    "title": src.title,
                    "cited_text": src.snippet,
                    "encrypted_index": opaque("i" + src.url, 80),
                }
                content.append({"type": "text", "text": s.text, "citations": [citation]})
                if i < n - 1:
                    content.append({"type": "text", "text": " "})
            else:
                content.append({"type": "text", "text": s.text + (" " if i < n - 1 else "")})
        if ans.filler:
            content.append({"type": "text", "text": ans.filler})
        out_text = "".join(b.get("text", "") for b in content)
        in_tok = estimate_tokens(call.prompt) + 12 + (2000 if call.search else 0)
        return {
            "id": f"msg_{new_id(12)}",
            "type": "message",
            "role": "assistant",
            "model": dated(call.model, _DATED_MODELS, ""),
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

    def failed(self, call: Call, request_id: str) -> Json:
        # Anthropic has no failed status: the nearest 200-but-unusable answer is a refusal with no text.
        return {
            "id": f"msg_{new_id(12)}",
            "type": "message",
            "role": "assistant",
            "model": dated(call.model, _DATED_MODELS, ""),
            "content": [],
            "stop_reason": "refusal",
            "stop_sequence": None,
            "usage": {"input_tokens": estimate_tokens(call.prompt), "output_tokens": 0},
        }

    def error(self, status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> Json:
        etype = kind or _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}

    def missing_key_message(self) -> str:
        return "x-api-key header is required"

    def invalid_key(self, key: str, request_id: str) -> Json:
        return self.error(401, f"invalid x-api-key: {key}", request_id)

    def server_error(self, status: int, request_id: str) -> Json:
        return self.error(status, "Overloaded" if status == 503 else "Internal server error", request_id)

    def rate_limited(self, wait_s: float, model: str, what: str, quota: Quota, request_id: str) -> BodyAndHeaders:
        body = self.error(
            429, "This request would exceed your account's rate limit. Please try again later.", request_id
        )
        headers = {"retry-after": str(ceil_s(wait_s)), "x-should-retry": "true"}
        headers.update(self.quota_headers(quota))
        return body, headers

    def quota_headers(self, quota: Quota) -> dict[str, str]:
        h: dict[str, str] = {}
        if quota.rpm is not None:
            h["anthropic-ratelimit-requests-limit"] = str(int(quota.rpm))
            h["anthropic-ratelimit-requests-remaining"] = str(quota.requests_remaining)
            h["anthropic-ratelimit-requests-reset"] = _rfc3339_in(quota.requests_reset_s)
        for kind, limit, remaining, reset in (
            ("input-tokens", quota.input_tpm, quota.input_tokens_remaining, quota.input_tokens_reset_s),
            ("output-tokens", quota.output_tpm, quota.output_tokens_remaining, quota.output_tokens_reset_s),
        ):
            if limit is not None and remaining is not None:
                h[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
                h[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
                h[f"anthropic-ratelimit-{kind}-reset"] = _rfc3339_in(reset)
        if quota.tpm is not None and quota.tokens_remaining is not None:
            h["anthropic-ratelimit-tokens-limit"] = str(quota.tpm)
            h["anthropic-ratelimit-tokens-remaining"] = str(quota.tokens_remaining)
            h["anthropic-ratelimit-tokens-reset"] = _rfc3339_in(quota.tokens_reset_s)
        return h

    def extra_headers(self) -> dict[str, str]:
        return {}

    def models_list(self, models: list[str]) -> Json:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-10-01T00:00:00Z"} for m in models]
        return {"data": data, "has_more": False, "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None}


FORMAT: WireFormat = AnthropicMessages()
