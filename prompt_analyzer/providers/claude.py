"""Anthropic Claude through the official SDK's Messages API (``client.messages.create``).

Raw JSON is read from the SDK's raw response so the stored body is the wire body and one parser
(:mod:`.anthropic_messages`) serves the contract tests and the fuzzer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic
import httpx2

from ..config import PlatformSettings
from . import anthropic_messages
from .base import BaseProvider, ModelsList, Reply
from .errors import ProviderError, error_text, response_excerpt
from .json_fields import as_dict, as_str
from .results import Answer
from .retry_hints import parse_retry_after, retry_from_message

WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def _rfc3339(value: str | None) -> float | None:
    """An RFC 3339 instant (``anthropic-ratelimit-*-reset``) in epoch seconds."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def rate_limit_wait(headers: Mapping[str, str] | None, message: str, *, now: float | None = None) -> float | None:
    """retry-after(-ms); else the latest reset of an exhausted ``anthropic-ratelimit-*``; else the text.

    Resets are RFC 3339 instants, measured from the response's ``date`` header when present so a
    skewed local clock does not stretch the wait.  ``now`` is in epoch seconds.
    """
    wait = parse_retry_after(headers, now)
    if wait is not None or not headers:
        return wait if wait is not None else retry_from_message(message)
    ref = now
    date = headers.get("date")
    if ref is None and date:
        try:
            ref = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            ref = None
    ref = time.time() if ref is None else ref
    waits: list[float] = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        if headers.get(f"anthropic-ratelimit-{kind}-remaining") == "0":
            reset = _rfc3339(headers.get(f"anthropic-ratelimit-{kind}-reset"))
            if reset is not None:
                waits.append(max(0.0, reset - ref))
    return max(waits) if waits else retry_from_message(message)


class ClaudeProvider(BaseProvider):
    """One ``AsyncAnthropic`` for the run; connection pool sized to the platform's concurrency."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        self._http = anthropic.DefaultAsyncHttpxClient(**self.http_options(httpx2))
        self._client = anthropic.AsyncAnthropic(**self.sdk_options(self._http, settings.base_url))

    def request_body(self, prompt: str) -> dict[str, Any]:
        """The Messages request for ``prompt`` (live calls and Message Batch requests send the same)."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if self.settings.web_search:
            kwargs["tools"] = [dict(WEB_SEARCH_TOOL)]
        return kwargs

    async def send(self, prompt: str) -> Reply:
        raw = await self._client.messages.with_raw_response.create(**self.request_body(prompt))
        return Reply(raw.http_response.text, raw.headers.get("request-id"), raw.headers)

    async def models(self) -> ModelsList:
        raw = await self._client.models.with_raw_response.list()
        page = await raw.parse()
        return ModelsList([m.id for m in page.data], self.stated_limits(raw.headers))

    def map_error(self, exc: Exception) -> ProviderError | None:
        """``anthropic`` SDK exceptions (529 overloaded is a 5xx: transient); httpx2 errors: the base's."""
        if isinstance(exc, anthropic.APITimeoutError):
            return self.transport_error(exc, timeout=True)
        if isinstance(exc, anthropic.APIConnectionError):
            return self.transport_error(exc, timeout=False)
        if isinstance(exc, anthropic.APIStatusError):
            headers = exc.response.headers if exc.response is not None else None
            body = exc.body
            rid = headers.get("request-id") if headers is not None else None
            rid = rid or as_str(as_dict(body).get("request_id"))
            return self.http_error(
                exc.status_code, error_text(body, fallback=response_excerpt(exc.response)),
                headers=headers, body=body, request_id=rid,
            )
        if isinstance(exc, anthropic.AnthropicError):
            return self.transport_error(exc, timeout=False)
        return None

    def rate_limit_wait(self, headers: Mapping[str, str] | None, message: str, body: Any) -> float | None:
        return rate_limit_wait(headers, message)

    def parse(self, body: Any, request_id: str | None) -> Answer:
        return anthropic_messages.parse(body, request_id)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
