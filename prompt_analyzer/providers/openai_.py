"""OpenAI through the official SDK's Responses API (``client.responses.create``).

The SDK does the HTTP (and its own error mapping); we read the raw JSON ourselves so the stored
body is exactly what came over the wire and one parser serves the contract tests and the fuzzer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import openai

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
from .retry_hints import parse_go_duration, parse_retry_after, retry_from_message

PLATFORM = "openai"


def parse_response(
    body: Any,
    settings: PlatformSettings,
    *,
    latency_ms: int = 0,
    request_id: str | None = None,
    secrets: Sequence[str] = (),
) -> ProviderResult:
    """Turn a decoded Responses API body into a ProviderResult, or raise MalformedResponse."""
    return guarded_parse(
        PLATFORM, lambda: _parse(body, settings, latency_ms, request_id, secrets), secrets,
        request_id=request_id,
    )


def _parse(
    body: Any, settings: PlatformSettings, latency_ms: int, request_id: str | None, secrets: Sequence[str]
) -> ProviderResult:
    if not isinstance(body, dict):
        malformed(PLATFORM, f"expected a JSON object, got {type(body).__name__}", secrets)
    status = as_str(body.get("status"))
    if status in ("failed", "cancelled"):
        detail = error_text({"error": body.get("error")}, fallback=f"response status {status}")
        malformed(PLATFORM, f"response {status}: {detail}", secrets, request_id=request_id)
    output = body.get("output")
    if not isinstance(output, list):
        malformed(PLATFORM, "response has no output list", secrets, request_id=request_id)

    texts: list[str] = []
    cites = CitationBuilder()
    retrieved: list[tuple[Any, Any]] = []
    searches = 0
    queries: list[str] = []
    refusal: str | None = None
    offset = 0  # character offset of the current output_text within the joined answer
    for item in output:
        item = as_dict(item)
        kind = item.get("type")
        if kind == "web_search_call":
            searches += 1
            action = as_dict(item.get("action"))
            queries += [q for q in as_list(action.get("queries")) if isinstance(q, str)]
            if isinstance(action.get("query"), str) and not action.get("queries"):
                queries.append(action["query"])
            for src in as_list(action.get("sources")):
                src = as_dict(src)
                retrieved.append((src.get("url"), src.get("title")))
        elif kind == "message":
            for part in as_list(item.get("content")):
                part = as_dict(part)
                ptype = part.get("type")
                if ptype == "output_text" and isinstance(part.get("text"), str):
                    text = part["text"]
                    if texts:
                        offset += 1  # the "\n" join
                    for ann in as_list(part.get("annotations")):
                        ann = as_dict(ann)
                        if ann.get("type") == "url_citation":
                            start = as_int(ann.get("start_index"))
                            cites.add(ann.get("url"), ann.get("title"), cited=True,
                                      at=offset + (start if start is not None else len(text)))
                    texts.append(text)
                    offset += len(text)
                elif ptype == "refusal" and isinstance(part.get("refusal"), str):
                    refusal = part["refusal"]
    for url, title in retrieved:
        cites.add(url, title, cited=False)

    if not texts and refusal is not None:
        raise PermanentError(
            build_message(PLATFORM, 200, f"refusal: {refusal}", secrets), status=200, request_id=request_id
        )
    if not texts and status == "incomplete":  # e.g. the token cap went on reasoning: it would again
        reason = as_dict(body.get("incomplete_details")).get("reason")
        raise PermanentError(
            build_message(PLATFORM, 200, f"empty answer: response incomplete ({reason})", secrets),
            status=200, request_id=request_id,
        )
    if not texts:
        malformed(PLATFORM, f"response has no output_text (status {status})", secrets, request_id=request_id)

    usage = body.get("usage")
    u = as_dict(usage)
    result = ProviderResult(
        text="\n".join(texts),
        model_version=as_str(body.get("model")),
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        total_tokens=as_int(u.get("total_tokens")),
        cost=None,
        latency_ms=latency_ms,
        citations=cites.build(),
        request_id=request_id,
        raw=body,
    )
    if isinstance(body.get("id"), str):
        result.metadata["response_id"] = body["id"]
    if status:
        result.metadata["status"] = status
    if status == "incomplete":
        reason = as_dict(body.get("incomplete_details")).get("reason")
        result.metadata["incomplete_reason"] = reason if isinstance(reason, str) else "unknown"
    if queries:
        result.metadata["search_queries"] = queries
    return finish_usage(result, settings, have_usage=isinstance(usage, dict), searches=searches)


def _rate_limit_wait(headers: Mapping[str, str] | None, message: str) -> float | None:
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


def classify_api_error(exc: Exception, secrets: Sequence[str]) -> ProviderError:
    """Map an ``openai`` SDK exception to our error tree."""
    if isinstance(exc, openai.APITimeoutError):
        return transport_error(PLATFORM, exc, secrets, timeout=True)
    if isinstance(exc, openai.APIConnectionError):
        return transport_error(PLATFORM, exc, secrets, timeout=False)
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers if exc.response is not None else None
        body = exc.body
        detail = error_text(body, fallback=_body_text(exc.response))
        code = as_dict(as_dict(body).get("error", body)).get("code")
        rid = headers.get("x-request-id") if headers is not None else None
        return classify_status(
            PLATFORM, exc.status_code, detail, secrets,
            retry_after=_rate_limit_wait(headers, detail) if exc.status_code == 429 else None,
            request_id=rid,
            # Out of credit is a 429 too, but waiting does not help.
            permanent=exc.status_code == 429 and code == "insufficient_quota",
        )
    return transport_error(PLATFORM, exc, secrets, timeout=False)


def _body_text(response: httpx2.Response | None) -> str:
    if response is None:
        return ""
    try:
        return response.text[:500]
    except Exception:  # a body we cannot read adds nothing to the message
        return ""


class OpenAIProvider(BaseProvider):
    """One ``AsyncOpenAI`` for the run; connection pool sized to the platform's concurrency."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        n = self.pool_size
        self._http = openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx2.Timeout(self.timeout_s),
        )
        self._client = openai.AsyncOpenAI(
            api_key=self._key,
            base_url=settings.base_url or None,
            max_retries=0,  # the engine owns retries
            timeout=self.timeout_s,
            http_client=self._http,
        )

    async def ask(self, prompt: str) -> ProviderResult:
        kwargs: dict[str, Any] = {"model": self.model, "input": prompt}
        if self.settings.web_search:
            kwargs["tools"] = [{"type": "web_search"}]
        if self.settings.max_tokens:
            kwargs["max_output_tokens"] = self.settings.max_tokens
        start = time.perf_counter()
        try:
            raw = await self._client.responses.with_raw_response.create(**kwargs)
            text = raw.http_response.text
        except openai.OpenAIError as e:
            raise classify_api_error(e, self.secrets) from None
        except httpx2.HTTPError as e:  # a body read that failed mid-stream
            raise transport_error(PLATFORM, e, self.secrets, timeout=isinstance(e, httpx2.TimeoutException)) from None
        except Exception as e:
            raise unexpected(PLATFORM, e, self.secrets) from None
        latency = elapsed_ms(start)
        rid = raw.headers.get("x-request-id")
        body = decode_json(text, platform=PLATFORM)
        result = parse_response(body, self.settings, latency_ms=latency, request_id=rid, secrets=self.secrets)
        result.metadata["web_search"] = self.settings.web_search
        return result

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
