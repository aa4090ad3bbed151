"""Google Gemini through google-genai (``client.aio.models.generate_content``).

We hand the SDK our own ``httpx.AsyncClient``: it sizes the pool to the platform's concurrency and
keeps the SDK off its aiohttp path, which silently sleeps 1-10 s and retries connection errors once
(the engine alone retries).  ``should_return_http_response`` makes the SDK return the raw body, so
the stored JSON is the wire JSON and one parser serves the contract tests and the fuzzer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

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
    finish_usage,
    guarded_parse,
    malformed,
    pick,
    transport_error,
    unexpected,
)
from .citations import CitationBuilder, domain_from_title, domain_of, normalize_url
from .errors import MalformedResponse, PermanentError, ProviderError
from .results import ProviderResult
from .retry_hints import parse_proto_duration, parse_retry_after, retry_from_message

PLATFORM = "gemini"
# Finish reasons that mean "the model would not answer": retrying the same prompt will not help.
REFUSALS = frozenset({"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY"})


def parse_response(
    body: Any,
    settings: PlatformSettings,
    *,
    latency_ms: int = 0,
    request_id: str | None = None,
    secrets: Sequence[str] = (),
) -> ProviderResult:
    """Turn a decoded generateContent body into a ProviderResult (camelCase or snake_case keys)."""
    return guarded_parse(
        PLATFORM, lambda: _parse(body, settings, latency_ms, request_id, secrets), secrets,
        request_id=request_id,
    )


def _parse(
    body: Any, settings: PlatformSettings, latency_ms: int, request_id: str | None, secrets: Sequence[str]
) -> ProviderResult:
    if not isinstance(body, dict):
        malformed(PLATFORM, f"expected a JSON object, got {type(body).__name__}", secrets)
    if isinstance(body.get("error"), dict):
        err = body["error"]
        malformed(PLATFORM, f"error in 200: {err.get('status')}: {err.get('message')}", secrets)
    rid = request_id or as_str(pick(body, "responseId", "response_id"))
    candidates = as_list(body.get("candidates"))
    feedback = as_dict(pick(body, "promptFeedback", "prompt_feedback"))
    block = as_str(pick(feedback, "blockReason", "block_reason"))
    if not candidates:
        if block:
            raise PermanentError(
                build_message(PLATFORM, 200, f"prompt blocked: {block}", secrets), status=200, request_id=rid
            )
        malformed(PLATFORM, "response has no candidates", secrets, request_id=rid)
    cand = as_dict(candidates[0])
    finish = as_str(pick(cand, "finishReason", "finish_reason"))
    texts = [
        p["text"]
        for p in as_list(as_dict(cand.get("content")).get("parts"))
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]
    text = "".join(texts)
    if not text and finish in REFUSALS:
        raise PermanentError(
            build_message(PLATFORM, 200, f"refusal: finishReason {finish}", secrets), status=200, request_id=rid
        )
    if not text and finish == "MAX_TOKENS":  # the budget went on thinking: the same call fails again
        raise PermanentError(
            build_message(PLATFORM, 200, "empty answer: output token limit reached", secrets),
            status=200, request_id=rid,
        )
    if not texts:
        malformed(PLATFORM, f"candidate has no text (finishReason {finish})", secrets, request_id=rid)

    gm = as_dict(pick(cand, "groundingMetadata", "grounding_metadata"))
    chunks = as_list(pick(gm, "groundingChunks", "grounding_chunks"))
    first_byte: dict[int, int] = {}  # chunk index -> earliest UTF-8 byte offset of a support citing it
    for sup in as_list(pick(gm, "groundingSupports", "grounding_supports")):
        sup = as_dict(sup)
        seg = as_dict(sup.get("segment"))
        # proto3 JSON omits zero values: a missing startIndex is offset 0.
        start = as_int(pick(seg, "startIndex", "start_index")) or 0
        for idx in as_list(pick(sup, "groundingChunkIndices", "grounding_chunk_indices")):
            i = as_int(idx)
            if i is not None and i < len(chunks):
                first_byte[i] = min(first_byte.get(i, start), start)
    cites = CitationBuilder()
    for i in sorted(first_byte, key=lambda i: (first_byte[i], i)):
        _add_chunk(cites, chunks[i], cited=True, at=first_byte[i])
    for i, ch in enumerate(chunks):
        if i not in first_byte:
            _add_chunk(cites, ch, cited=False)
    queries = [q for q in as_list(pick(gm, "webSearchQueries", "web_search_queries")) if isinstance(q, str)]
    grounded = 1 if gm and (queries or chunks) else 0

    usage = pick(body, "usageMetadata", "usage_metadata")
    u = as_dict(usage)
    have_usage = isinstance(usage, dict)
    # proto3 JSON drops zero counts, so inside a usage object "absent" means 0.
    prompt = as_int(pick(u, "promptTokenCount", "prompt_token_count")) or 0
    tool = as_int(pick(u, "toolUsePromptTokenCount", "tool_use_prompt_token_count")) or 0
    cand_tok = as_int(pick(u, "candidatesTokenCount", "candidates_token_count")) or 0
    thoughts = as_int(pick(u, "thoughtsTokenCount", "thoughts_token_count")) or 0
    total = as_int(pick(u, "totalTokenCount", "total_token_count"))
    result = ProviderResult(
        text=text,
        model_version=as_str(pick(body, "modelVersion", "model_version")),
        input_tokens=prompt + tool if have_usage else None,
        output_tokens=cand_tok + thoughts if have_usage else None,
        total_tokens=total if total is not None else None,
        cost=None,
        latency_ms=latency_ms,
        citations=cites.build(),
        request_id=rid,
        raw=body,
    )
    if finish:
        result.metadata["finish_reason"] = finish
    if finish == "MAX_TOKENS":
        result.metadata["truncated"] = True
    if queries:
        result.metadata["search_queries"] = queries
    result.metadata["grounded"] = bool(grounded)
    return finish_usage(result, settings, have_usage=have_usage, searches=grounded)


def _add_chunk(cites: CitationBuilder, chunk: Any, *, cited: bool, at: int | None = None) -> None:
    web = as_dict(as_dict(chunk).get("web"))
    uri, title = web.get("uri"), as_str(web.get("title"))
    if not isinstance(uri, str):
        return
    # uri is a Google redirect link; the title usually names the real site.
    domain = domain_from_title(title) or domain_of(normalize_url(uri))
    cites.add(uri, title, cited=cited, at=at, domain=domain)


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


def _is_key_error(details: Any) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT + ErrorInfo reason API_KEY_INVALID."""
    err = as_dict(as_dict(details).get("error", details))
    for d in as_list(err.get("details")):
        if as_dict(d).get("reason") in ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"):
            return True
    msg = as_str(err.get("message")) or ""
    return "API key not valid" in msg or "API key expired" in msg


def classify_api_error(exc: Exception, secrets: Sequence[str]) -> ProviderError:
    """Map a google-genai APIError (or an httpx transport error) to our error tree."""
    if isinstance(exc, genai_errors.APIError):
        code = int(exc.code) if isinstance(exc.code, int) else 0
        status_name = exc.status if isinstance(exc.status, str) else ""
        message = exc.message if isinstance(exc.message, str) else ""
        detail = f"{status_name}: {message}" if status_name and status_name not in message else message
        headers: Mapping[str, str] | None = None
        resp = getattr(exc, "response", None)
        if resp is not None and hasattr(resp, "headers"):
            headers = resp.headers
        wait = None
        if code == 429:
            wait = retry_delay(exc.details)
            if wait is None:
                wait = parse_retry_after(headers)
            if wait is None:
                wait = retry_from_message(message)
        return classify_status(
            PLATFORM, code or 500, detail, secrets, retry_after=wait, auth=_is_key_error(exc.details)
        )
    if isinstance(exc, httpx.TimeoutException):
        return transport_error(PLATFORM, exc, secrets, timeout=True)
    return transport_error(PLATFORM, exc, secrets, timeout=False)


class GeminiProvider(BaseProvider):
    """One ``genai.Client`` over one pooled ``httpx.AsyncClient`` for the run."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        n = self.pool_size
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx.Timeout(self.timeout_s),
        )
        opts = types.HttpOptions(
            base_url=settings.base_url or None,
            timeout=max(1, int(self.timeout_s * 1000)),  # milliseconds
            httpx_async_client=self._http,
        )
        self._client = genai.Client(api_key=self._key, http_options=opts)
        tools: list[Any] | None = [types.Tool(google_search=types.GoogleSearch())] if settings.web_search else None
        self._config = types.GenerateContentConfig(
            tools=tools,
            max_output_tokens=settings.max_tokens or None,
            should_return_http_response=True,
        )

    async def ask(self, prompt: str) -> ProviderResult:
        start = time.perf_counter()
        try:
            resp = await self._client.aio.models.generate_content(
                model=self.model, contents=prompt, config=self._config
            )
        except genai_errors.APIError as e:
            raise classify_api_error(e, self.secrets) from None
        except httpx.HTTPError as e:
            raise classify_api_error(e, self.secrets) from None
        except (ValueError, TypeError, KeyError) as e:  # the SDK choking on a response it cannot read
            raise MalformedResponse(
                build_message(PLATFORM, 200, f"unparseable response ({type(e).__name__}: {e})", self.secrets),
                status=200,
            ) from None
        except Exception as e:
            raise unexpected(PLATFORM, e, self.secrets) from None
        latency = elapsed_ms(start)
        http = resp.sdk_http_response
        body_text = http.body if http is not None else None
        if not body_text:
            malformed(PLATFORM, "empty response body", self.secrets)
        body = decode_json(body_text, platform=PLATFORM)
        headers = (http.headers or {}) if http is not None else {}
        rid = headers.get("x-request-id") or headers.get("X-Request-Id")
        result = parse_response(body, self.settings, latency_ms=latency, request_id=rid, secrets=self.secrets)
        result.metadata["web_search"] = self.settings.web_search
        return result

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()
