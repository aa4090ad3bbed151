"""OpenAI's conventions shared by its two APIs (Responses and Chat Completions) and the many services that
copy Chat Completions: Bearer auth, the ``{"error": {message, type, param, code}}`` body, 429 hints in
``retry-after-ms`` / ``retry-after`` and ``x-ratelimit-*`` headers, dated model names, inline source links.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..content import Answer
from .base import BodyAndHeaders, Json, Quota, Span, bearer_key, ceil_ms, ceil_s, marked_text

DATED_MODELS = {
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    500: "server_error",
    503: "server_error",
}


def duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* style: ``12ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{ceil_ms(seconds)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    m, s = divmod(math.ceil(seconds), 60)
    return f"{m}m{s}s"


def linked_text(ans: Answer) -> tuple[str, list[Span]]:
    """OpenAI's search answers: each cited sentence followed by `` ([domain](url))``; spans cover the link."""

    def link(i: int) -> str:
        src = ans.sources[i]
        return f" ([{src.domain}]({src.url}))"

    return marked_text(ans, link)


class OpenAIErrors:
    """The WireFormat methods that are the same for every OpenAI-shaped API (all but parse/success/failed)."""

    request_id_header = "x-request-id"

    def key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_key(headers)

    def error(self, status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> Json:
        etype = kind or _ERROR_TYPES.get(status, "server_error")
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}

    def missing_key_message(self) -> str:
        return (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )

    def invalid_key(self, key: str, request_id: str) -> Json:
        msg = (
            f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return self.error(401, msg, request_id, code="invalid_api_key")

    def server_error(self, status: int, request_id: str) -> Json:
        if status == 503:
            msg = "The server is overloaded or not ready yet."
        else:
            msg = (
                "The server had an error while processing your request. Sorry about that! You can retry your "
                f"request, or contact us through our help center at help.openai.com (request ID {request_id})."
            )
        return self.error(status, msg, request_id)

    def rate_limited(self, wait_s: float, model: str, what: str, quota: Quota, request_id: str) -> BodyAndHeaders:
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
        body = self.error(429, msg, request_id, kind="tokens" if what == "tokens" else "requests",
                          code="rate_limit_exceeded")
        headers = {"retry-after-ms": str(ms), "retry-after": str(ceil_s(wait_s))}
        headers.update(self.quota_headers(quota))
        return body, headers

    def quota_headers(self, quota: Quota) -> dict[str, str]:
        if quota.rpm is None:
            return {}
        h = {
            "x-ratelimit-limit-requests": str(int(quota.rpm)),
            "x-ratelimit-remaining-requests": str(quota.requests_remaining),
            "x-ratelimit-reset-requests": duration(quota.requests_reset_s),
        }
        if quota.tpm is not None and quota.tokens_remaining is not None:
            h["x-ratelimit-limit-tokens"] = str(quota.tpm)
            h["x-ratelimit-remaining-tokens"] = str(quota.tokens_remaining)
            h["x-ratelimit-reset-tokens"] = duration(quota.tokens_reset_s)
        return h

    def extra_headers(self) -> dict[str, str]:
        return {"openai-version": "2020-10-01", "openai-processing-ms": "1"}

    def models_list(self, models: list[str]) -> Json:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 1744316542, "owned_by": "system"}
                                           for m in models]}
