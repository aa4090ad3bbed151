"""Anthropic Claude through the official SDK's Messages API (``client.messages.create``).

Raw JSON is read from the SDK's raw response so the stored body is the wire body and one parser
serves the contract tests and the fuzzer.
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
from ._base import BaseProvider
from ._common import (
    as_dict,
    as_int,
    as_list,
    as_str,
    build_message,
    classify_status,
    decode_json,
    elapsed_ms,
    error_text,
    finish_usage,
    guarded_parse,
    malformed,
    transport_error,
    unexpected,
)
from .citations import CitationBuilder
from .errors import PermanentError, ProviderError
from .results import ProviderResult
from .retry_hints import parse_retry_after, retry_from_message

PLATFORM = "claude"
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def parse_response(
    body: Any,
    settings: PlatformSettings,
    *,
    latency_ms: int = 0,
    request_id: str | None = None,
    secrets: Sequence[str] = (),
) -> ProviderResult:
    """Turn a decoded Messages body into a ProviderResult, or raise MalformedResponse/PermanentError."""
    return guarded_parse(
        PLATFORM, lambda: _parse(body, settings, latency_ms, request_id, secrets), secrets,
        request_id=request_id,
    )


def _parse(
    body: Any, settings: PlatformSettings, latency_ms: int, request_id: str | None, secrets: Sequence[str]
) -> ProviderResult:
    if not isinstance(body, dict):
        malformed(PLATFORM, f"expected a JSON object, got {type(body).__name__}", secrets)
    if body.get("type") == "error":  # an error object inside a 200 (seen behind some proxies)
        malformed(PLATFORM, f"error in 200: {error_text(body)}", secrets, request_id=request_id)
    content = body.get("content")
    if not isinstance(content, list):
        malformed(PLATFORM, "message has no content list", secrets, request_id=request_id)
    stop_reason = as_str(body.get("stop_reason"))

    texts: list[str] = []
    offset = 0
    cites = CitationBuilder()
    retrieved: list[tuple[Any, Any]] = []
    search_errors: list[str] = []
    for block in content:
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = block["text"]
            for c in as_list(block.get("citations")):
                c = as_dict(c)
                if c.get("type") == "web_search_result_location":
                    cites.add(c.get("url"), c.get("title"), cited=True, at=offset)
            texts.append(text)
            offset += len(text)
        elif kind == "web_search_tool_result":
            res = block.get("content")
            if isinstance(res, list):
                for r in res:
                    r = as_dict(r)
                    if r.get("type", "web_search_result") == "web_search_result":
                        retrieved.append((r.get("url"), r.get("title")))
            elif isinstance(res, dict) and isinstance(res.get("error_code"), str):
                search_errors.append(res["error_code"])
    for url, title in retrieved:
        cites.add(url, title, cited=False)

    if stop_reason == "refusal":
        raise PermanentError(
            build_message(PLATFORM, 200, "refusal: the model declined to answer", secrets),
            status=200, request_id=request_id,
        )

    if not texts and stop_reason == "max_tokens":
        raise PermanentError(
            build_message(PLATFORM, 200, "empty answer: max_tokens reached before any text", secrets),
            status=200, request_id=request_id,
        )
    if not texts:
        malformed(PLATFORM, f"message has no text block (stop_reason {stop_reason})", secrets, request_id=request_id)

    usage = body.get("usage")
    u = as_dict(usage)
    stu = as_dict(u.get("server_tool_use"))
    searches = as_int(stu.get("web_search_requests")) or 0
    inp, out = as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))
    result = ProviderResult(
        text="".join(texts),  # Claude splits one answer into blocks around each citation
        model_version=as_str(body.get("model")),
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out if inp is not None and out is not None else None,
        cost=None,
        latency_ms=latency_ms,
        citations=cites.build(),
        request_id=request_id,
        raw=body,
    )
    if isinstance(body.get("id"), str):
        result.metadata["response_id"] = body["id"]
    if stop_reason:
        result.metadata["stop_reason"] = stop_reason
    if stop_reason == "max_tokens":
        result.metadata["truncated"] = True
    if search_errors:
        result.metadata["search_errors"] = search_errors
    cache_read = as_int(u.get("cache_read_input_tokens"))
    if cache_read:
        result.metadata["cache_read_input_tokens"] = cache_read
    return finish_usage(result, settings, have_usage=isinstance(usage, dict), searches=searches)


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


def classify_api_error(exc: Exception, secrets: Sequence[str]) -> ProviderError:
    """Map an ``anthropic`` SDK exception to our error tree (529 overloaded is a 5xx: transient)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return transport_error(PLATFORM, exc, secrets, timeout=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return transport_error(PLATFORM, exc, secrets, timeout=False)
    if isinstance(exc, anthropic.APIStatusError):
        headers = exc.response.headers if exc.response is not None else None
        body = exc.body
        fallback = ""
        if exc.response is not None:
            try:
                fallback = exc.response.text[:500]
            except Exception:  # an unreadable body only shortens the message
                fallback = ""
        detail = error_text(body, fallback=fallback)
        rid = (headers.get("request-id") if headers is not None else None) or as_str(as_dict(body).get("request_id"))
        return classify_status(
            PLATFORM, exc.status_code, detail, secrets,
            retry_after=rate_limit_wait(headers, detail) if exc.status_code == 429 else None,
            request_id=rid,
        )
    return transport_error(PLATFORM, exc, secrets, timeout=False)


class ClaudeProvider(BaseProvider):
    """One ``AsyncAnthropic`` for the run; connection pool sized to the platform's concurrency."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        n = self.pool_size
        self._http = anthropic.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx2.Timeout(self.timeout_s),
        )
        self._client = anthropic.AsyncAnthropic(
            api_key=self._key,
            base_url=settings.base_url or None,
            max_retries=0,  # the engine owns retries
            timeout=self.timeout_s,
            http_client=self._http,
        )

    async def ask(self, prompt: str) -> ProviderResult:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if self.settings.web_search:
            kwargs["tools"] = [dict(WEB_SEARCH_TOOL)]
        start = time.perf_counter()
        try:
            raw = await self._client.messages.with_raw_response.create(**kwargs)
            text = raw.http_response.text
        except anthropic.AnthropicError as e:
            raise classify_api_error(e, self.secrets) from None
        except httpx2.HTTPError as e:
            raise transport_error(PLATFORM, e, self.secrets, timeout=isinstance(e, httpx2.TimeoutException)) from None
        except Exception as e:
            raise unexpected(PLATFORM, e, self.secrets) from None
        latency = elapsed_ms(start)
        rid = raw.headers.get("request-id")
        body = decode_json(text, platform=PLATFORM)
        result = parse_response(body, self.settings, latency_ms=latency, request_id=rid, secrets=self.secrets)
        result.metadata["web_search"] = self.settings.web_search
        return result

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
