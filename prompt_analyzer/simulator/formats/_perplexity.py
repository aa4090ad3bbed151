"""Perplexity's conventions shared by its two APIs (Sonar chat completions and the Agent API): Bearer auth,
its error body, a plain ``retry-after`` on 429, no rate-limit headers, ``[n]`` citation marks, costs in USD.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..content import Answer
from .base import BodyAndHeaders, Json, Quota, Span, bearer_key, ceil_s, marked_text

_ERROR_TYPES = {
    400: "invalid_request",
    401: "invalid_api_key",
    429: "rate_limit_exceeded",
    500: "internal_server_error",
    503: "service_unavailable",
}


def usd(x: float) -> float:
    return round(x, 6)


def numbered_text(ans: Answer) -> tuple[str, list[Span]]:
    """Perplexity's answers: each cited sentence followed by ``[n]`` (1-based source number)."""
    return marked_text(ans, lambda i: f"[{i + 1}]")


class PerplexityErrors:
    """The WireFormat methods both Perplexity APIs share (all but parse/success/failed)."""

    platform = "perplexity"
    request_id_header = "x-request-id"

    def key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_key(headers)

    def error(self, status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> Json:
        etype = kind or _ERROR_TYPES.get(status, "internal_server_error")
        return {"error": {"message": message, "type": etype, "code": status}}

    def missing_key_message(self) -> str:
        return "Missing API key. Provide it in the Authorization header as 'Bearer <key>'."

    def invalid_key(self, key: str, request_id: str) -> Json:
        return self.error(401, f"Invalid API key provided: {key}", request_id)

    def server_error(self, status: int, request_id: str) -> Json:
        msg = "Service temporarily unavailable" if status == 503 else "Internal server error"
        return self.error(status, msg, request_id)

    def rate_limited(self, wait_s: float, model: str, what: str, quota: Quota, request_id: str) -> BodyAndHeaders:
        body = self.error(429, "Rate limit exceeded. Please slow down your requests.", request_id)
        return body, {"retry-after": str(ceil_s(wait_s))}

    def quota_headers(self, quota: Quota) -> dict[str, str]:
        return {}

    def models_list(self, models: list[str]) -> Json:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "perplexity"} for m in models]}

    def extra_headers(self) -> dict[str, str]:
        return {}
