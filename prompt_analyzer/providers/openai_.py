"""OpenAI through the official SDK's Responses API (``client.responses.create``).

The SDK does the HTTP (and its own error mapping); we read the raw JSON ourselves so the stored
body is exactly what came over the wire and one parser (:mod:`.openai_responses`) serves the
contract tests and the fuzzer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import openai

from ..config import PlatformSettings
from . import openai_responses
from .base import BaseProvider, ModelsList, Reply
from .errors import ProviderError, error_text, response_excerpt
from .json_fields import as_dict
from .results import Answer
from .retry_hints import parse_go_duration, parse_retry_after, retry_from_message


def rate_limit_wait(headers: Mapping[str, str] | None, message: str) -> float | None:
    """retry-after(-ms); else an exhausted x-ratelimit-reset-*; else 'try again in 6ms' in the text."""
    wait = parse_retry_after(headers)
    if wait is not None:
        return wait
    if headers:
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
                reset = parse_go_duration(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset is not None:
                    return reset
    return retry_from_message(message)


class OpenAIProvider(BaseProvider):
    """One ``AsyncOpenAI`` for the run; connection pool sized to the platform's concurrency."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        self._http = openai.DefaultAsyncHttpxClient(**self.http_options(httpx2))
        self._client = openai.AsyncOpenAI(**self.sdk_options(self._http, settings.base_url))

    def request_body(self, prompt: str) -> dict[str, Any]:
        """The Responses request for ``prompt`` (live calls and batch lines send the same)."""
        kwargs: dict[str, Any] = {"model": self.model, "input": prompt}
        if self.settings.web_search:
            kwargs["tools"] = [{"type": "web_search"}]
        if self.settings.max_tokens:
            kwargs["max_output_tokens"] = self.settings.max_tokens
        return kwargs

    async def send(self, prompt: str) -> Reply:
        raw = await self._client.responses.with_raw_response.create(**self.request_body(prompt))
        return Reply(raw.http_response.text, raw.headers.get("x-request-id"), raw.headers)

    async def models(self) -> ModelsList:
        raw = await self._client.models.with_raw_response.list()
        page = raw.parse()  # a page is parsed synchronously
        return ModelsList([m.id for m in page.data], self.stated_limits(raw.headers))

    def map_error(self, exc: Exception) -> ProviderError | None:
        """``openai`` SDK exceptions; httpx2 errors from a body read are classified by the base."""
        if isinstance(exc, openai.APITimeoutError):
            return self.transport_error(exc, timeout=True)
        if isinstance(exc, openai.APIConnectionError):
            return self.transport_error(exc, timeout=False)
        if isinstance(exc, openai.APIStatusError):
            headers = exc.response.headers if exc.response is not None else None
            body = exc.body
            code = as_dict(as_dict(body).get("error", body)).get("code")
            return self.http_error(
                exc.status_code, error_text(body, fallback=response_excerpt(exc.response)),
                headers=headers, body=body,
                request_id=headers.get("x-request-id") if headers is not None else None,
                # Out of credit is a 429 too, but waiting does not help.
                permanent=exc.status_code == 429 and code == "insufficient_quota",
            )
        if isinstance(exc, openai.OpenAIError):
            return self.transport_error(exc, timeout=False)
        return None

    def rate_limit_wait(self, headers: Mapping[str, str] | None, message: str, body: Any) -> float | None:
        return rate_limit_wait(headers, message)

    def parse(self, body: Any, request_id: str | None) -> Answer:
        return openai_responses.parse(body, request_id)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
