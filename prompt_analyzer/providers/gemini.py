"""Google Gemini through google-genai (``client.aio.models.generate_content``).

We hand the SDK our own ``httpx.AsyncClient``: it sizes the pool to the platform's concurrency and
keeps the SDK off its aiohttp path, which silently sleeps 1-10 s and retries connection errors once
(the engine alone retries).  ``should_return_http_response`` makes the SDK return the raw body, so
the stored JSON is the wire JSON and one parser (:mod:`.gemini_generate`) serves the contract tests
and the fuzzer.  Grounding links are Google redirects: :meth:`GeminiProvider.ask` resolves them
(:mod:`.redirects`) before the answer goes to the engine, so what is recorded is the real page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..config import PlatformSettings
from . import gemini_generate
from .base import BaseProvider, ModelsList, Reply
from .errors import ProviderError
from .json_fields import as_dict, as_list, as_str, pick
from .ratelimit_headers import StatedLimits, from_gemini_error
from .redirects import RedirectResolver
from .results import Answer, ProviderResult
from .retry_hints import parse_proto_duration


def retry_delay(body: Any) -> float | None:
    """``error.details[] RetryInfo.retryDelay`` from a Gemini error body (or the SDK's ``details``)."""
    err = as_dict(body).get("error", body)
    for d in as_list(as_dict(err).get("details")):
        d = as_dict(d)
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            v = parse_proto_duration(pick(d, "retryDelay", "retry_delay"))
            if v is not None:
                return v
    return None


def is_key_error(details: Any) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT + ErrorInfo reason API_KEY_INVALID."""
    err = as_dict(as_dict(details).get("error", details))
    for d in as_list(err.get("details")):
        if as_dict(d).get("reason") in ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"):
            return True
    msg = as_str(err.get("message")) or ""
    return "API key not valid" in msg or "API key expired" in msg


class GeminiProvider(BaseProvider):
    """One ``genai.Client`` over one pooled ``httpx.AsyncClient`` for the run."""

    states_limits = False  # only a 429's body names the quota

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        self._http = httpx.AsyncClient(**self.http_options(httpx))
        opts = types.HttpOptions(
            base_url=settings.base_url or None,
            timeout=max(1, int(self.timeout_s * 1000)),  # milliseconds
            httpx_async_client=self._http,
        )
        self._client = genai.Client(api_key=self._key, http_options=opts)
        tools: list[Any] | None = [types.Tool(google_search=types.GoogleSearch())] if settings.web_search else None
        # What every request asks (live calls and batch requests alike); live calls also want the raw body.
        self._request_config = types.GenerateContentConfig(tools=tools, max_output_tokens=settings.max_tokens or None)
        self._config = self._request_config.model_copy(update={"should_return_http_response": True})
        self._redirects = RedirectResolver()

    async def complete(self, result: ProviderResult) -> ProviderResult:
        """``result`` with its grounding redirects resolved (live answers and batch answers alike;
        bounded, a link that fails stays unresolved)."""
        if result.citations:
            result.citations = await self._redirects.resolve(result.citations)
        return result

    async def send(self, prompt: str) -> Reply:
        resp = await self._client.aio.models.generate_content(model=self.model, contents=prompt, config=self._config)
        http = resp.sdk_http_response
        body = http.body if http is not None else None
        if not body:
            raise self.malformed("empty response body")
        headers = (http.headers or {}) if http is not None else {}
        return Reply(body, headers.get("x-request-id") or headers.get("X-Request-Id"), headers)

    async def models(self) -> ModelsList:
        pager = await self._client.aio.models.list(config={"page_size": 100})
        names = [str(m.name).removeprefix("models/") for m in pager.page if m.name]
        return ModelsList(names, None)  # Gemini states its limits nowhere but in a 429

    def map_error(self, exc: Exception) -> ProviderError | None:
        """google-genai's APIError carries the status; httpx transport errors are the base's."""
        if isinstance(exc, genai_errors.APIError):
            code = int(exc.code) if isinstance(exc.code, int) else 0
            status_name = exc.status if isinstance(exc.status, str) else ""
            message = exc.message if isinstance(exc.message, str) else ""
            detail = f"{status_name}: {message}" if status_name and status_name not in message else message
            resp = getattr(exc, "response", None)
            headers = resp.headers if resp is not None and hasattr(resp, "headers") else None
            return self.http_error(code or 500, detail, headers=headers, body=exc.details,
                                   auth=is_key_error(exc.details))
        if isinstance(exc, ValueError | TypeError | KeyError):  # the SDK choking on a response it cannot read
            return self.malformed(f"unparseable response ({type(exc).__name__}: {exc})")
        return None

    def stated_limits(self, headers: Mapping[str, str] | None, body: Any = None) -> StatedLimits | None:
        """Gemini sends no rate-limit headers; a 429's body names the quota it hit."""
        return from_gemini_error(body) if body is not None else None

    def rate_limit_wait(self, headers: Mapping[str, str] | None, message: str, body: Any) -> float | None:
        """RetryInfo in the body first (Gemini sends no Retry-After), then the shared hints."""
        wait = retry_delay(body)
        return wait if wait is not None else super().rate_limit_wait(headers, message, body)

    def parse(self, body: Any, request_id: str | None) -> Answer:
        return gemini_generate.parse(body, request_id)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()
        await self._redirects.aclose()
