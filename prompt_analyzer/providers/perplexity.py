"""Perplexity over plain httpx: Sonar chat completions (``api="sonar"``) or the Agent API (``api="agent"``).

Cited vs retrieved (both APIs): a source is *cited* when the answer text references it with a
numbered marker ``[n]`` (Sonar: n indexes the ``citations`` list, else ``search_results``; Agent:
n is a search result's ``id``, else its 1-based order) or, on the Agent API, with a ``url_citation``
annotation.  Every other listed source was only *retrieved*.  Sonar's ``citations`` list names
every source the answer could draw on (in practice the whole search result list), so membership
in it alone says nothing about attribution; the markers do, like OpenAI's and Claude's in-text
citations.  Cited positions follow the first marker's place in the text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ..config import PlatformSettings
from ._base import BaseProvider
from ._common import (
    as_decimal,
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
from .errors import PermanentError
from .results import ProviderResult
from .retry_hints import parse_retry_after, retry_from_message

PLATFORM = "perplexity"
DEFAULT_BASE_URL = "https://api.perplexity.ai"
SONAR_PATH = "/chat/completions"
AGENT_PATH = "/v1/agent"
# Agent-run error codes that say the request itself is wrong: retrying cannot help.
_PERMANENT_CODES = ("invalid", "bad_request", "content", "policy", "refus", "not_found", "unsupported")

_MARKER = re.compile(r"\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]")


def _markers(text: str) -> dict[int, int]:
    """``[n]`` / ``[n, m]`` markers in the text: number -> offset of its first appearance."""
    first: dict[int, int] = {}
    for m in _MARKER.finditer(text):
        for part in m.group(1).split(","):
            n = int(part)
            first.setdefault(n, m.start())
    return first


# ------------------------------------------------------------------ Sonar chat completions


def parse_sonar(
    body: Any,
    settings: PlatformSettings,
    *,
    latency_ms: int = 0,
    request_id: str | None = None,
    secrets: Sequence[str] = (),
) -> ProviderResult:
    """Turn a decoded Sonar chat completion into a ProviderResult, or raise MalformedResponse."""
    return guarded_parse(
        PLATFORM, lambda: _parse_sonar(body, settings, latency_ms, request_id, secrets), secrets,
        request_id=request_id,
    )


def _parse_sonar(
    body: Any, settings: PlatformSettings, latency_ms: int, request_id: str | None, secrets: Sequence[str]
) -> ProviderResult:
    if not isinstance(body, dict):
        malformed(PLATFORM, f"expected a JSON object, got {type(body).__name__}", secrets)
    if body.get("error") is not None:
        malformed(PLATFORM, f"error in 200: {error_text(body)}", secrets)
    rid = request_id or as_str(body.get("id"))
    choices = as_list(body.get("choices"))
    if not choices:
        malformed(PLATFORM, "response has no choices", secrets, request_id=rid)
    choice = as_dict(choices[0])
    message = as_dict(choice.get("message"))
    text = message.get("content")
    if not isinstance(text, str):
        malformed(PLATFORM, "choices[0].message.content is not a string", secrets, request_id=rid)
    finish = as_str(choice.get("finish_reason"))

    citations = [c for c in as_list(body.get("citations")) if isinstance(c, str)]
    results = [as_dict(r) for r in as_list(body.get("search_results"))]
    titles: dict[str, str] = {}
    for r in results:
        if isinstance(r.get("url"), str) and isinstance(r.get("title"), str):
            titles.setdefault(r["url"], r["title"])
    numbered: list[Any] = list(citations) or [r.get("url") for r in results]
    cites = CitationBuilder()
    for n, at in _markers(text).items():
        if 1 <= n <= len(numbered) and isinstance(numbered[n - 1], str):
            url = numbered[n - 1]
            cites.add(url, titles.get(url), cited=True, at=at)
    for url in citations:
        cites.add(url, titles.get(url), cited=False)
    for r in results:
        cites.add(r.get("url"), r.get("title"), cited=False)

    usage = body.get("usage")
    u = as_dict(usage)
    ctx = as_str(u.get("search_context_size")) or settings.search_context_size
    result = ProviderResult(
        text=text,
        model_version=as_str(body.get("model")),
        input_tokens=as_int(u.get("prompt_tokens")),
        output_tokens=as_int(u.get("completion_tokens")),
        total_tokens=as_int(u.get("total_tokens")),
        cost=None,
        latency_ms=latency_ms,
        citations=cites.build(),
        request_id=rid,
        raw=body,
    )
    result.metadata["api"] = "sonar"
    result.metadata["search_context_size"] = ctx
    if finish:
        result.metadata["finish_reason"] = finish
    if finish == "length":
        result.metadata["truncated"] = True
    nq = as_int(u.get("num_search_queries"))
    if nq is not None:
        result.metadata["num_search_queries"] = nq
    _provider_cost(result, u)
    # Sonar bills search as a per-request fee (by context size), not per search.
    return finish_usage(result, settings, have_usage=isinstance(usage, dict), search_context_size=ctx)


def _provider_cost(result: ProviderResult, usage: dict[str, Any]) -> None:
    """Perplexity's own ``usage.cost.total_cost`` (as a string: metadata is JSON)."""
    cost = usage.get("cost")
    total = as_decimal(as_dict(cost).get("total_cost")) if isinstance(cost, dict) else as_decimal(cost)
    if total is not None:
        result.metadata["provider_cost"] = str(total)


# ------------------------------------------------------------------ Agent API


def parse_agent(
    body: Any,
    settings: PlatformSettings,
    *,
    latency_ms: int = 0,
    request_id: str | None = None,
    secrets: Sequence[str] = (),
) -> ProviderResult:
    """Turn a decoded Agent API (Responses-style) body into a ProviderResult, or raise."""
    return guarded_parse(
        PLATFORM, lambda: _parse_agent(body, settings, latency_ms, request_id, secrets), secrets,
        request_id=request_id,
    )


def _parse_agent(
    body: Any, settings: PlatformSettings, latency_ms: int, request_id: str | None, secrets: Sequence[str]
) -> ProviderResult:
    if not isinstance(body, dict):
        malformed(PLATFORM, f"expected a JSON object, got {type(body).__name__}", secrets)
    rid = request_id or as_str(body.get("id"))
    status = as_str(body.get("status"))
    if status in ("failed", "cancelled"):
        err = as_dict(body.get("error"))
        detail = error_text({"error": err}, fallback=f"run {status}")
        code = " ".join(str(err.get(k, "")) for k in ("code", "type")).lower()
        msg = build_message(PLATFORM, 200, f"run {status}: {detail}", secrets)
        if any(c in code for c in _PERMANENT_CODES):
            raise PermanentError(msg, status=200, request_id=rid)
        malformed(PLATFORM, f"run {status}: {detail}", secrets, request_id=rid)
    output = body.get("output")
    if not isinstance(output, list):
        malformed(PLATFORM, "response has no output list", secrets, request_id=rid)

    results: list[dict[str, Any]] = []
    texts: list[str] = []
    annotations: list[tuple[int, Any, Any]] = []
    offset = 0
    for item in output:
        item = as_dict(item)
        kind = item.get("type")
        if kind == "search_results":
            results += [as_dict(r) for r in as_list(item.get("results"))]
        elif kind == "message":
            for part in as_list(item.get("content")):
                part = as_dict(part)
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    if texts:
                        offset += 1
                    for ann in as_list(part.get("annotations")):
                        ann = as_dict(ann)
                        if ann.get("type") == "url_citation":
                            start = as_int(ann.get("start_index"))
                            annotations.append((offset + (start or 0), ann.get("url"), ann.get("title")))
                    texts.append(part["text"])
                    offset += len(part["text"])
    if not texts and status == "incomplete":
        reason = as_dict(body.get("incomplete_details")).get("reason")
        raise PermanentError(
            build_message(PLATFORM, 200, f"empty answer: run incomplete ({reason})", secrets),
            status=200, request_id=rid,
        )
    if not texts:
        malformed(PLATFORM, f"response has no output_text (status {status})", secrets, request_id=rid)
    text = "\n".join(texts)

    by_id: dict[int, dict[str, Any]] = {}
    for i, r in enumerate(results, start=1):
        rid_n = as_int(r.get("id"))
        by_id.setdefault(rid_n if rid_n is not None else i, r)
    cites = CitationBuilder()
    for at, url, title in annotations:
        cites.add(url, title, cited=True, at=at)
    for n, at in _markers(text).items():
        hit = by_id.get(n)
        if hit is not None:
            cites.add(hit.get("url"), hit.get("title"), cited=True, at=at)
    for r in results:
        cites.add(r.get("url"), r.get("title"), cited=False)

    usage = body.get("usage")
    u = as_dict(usage)
    searches = as_int(as_dict(as_dict(u.get("tool_calls_details")).get("search_web")).get("invocation"))
    if searches is None:
        searches = sum(1 for it in output if as_dict(it).get("type") == "search_results")
    result = ProviderResult(
        text=text,
        model_version=as_str(body.get("model")),
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        total_tokens=as_int(u.get("total_tokens")),
        cost=None,
        latency_ms=latency_ms,
        citations=cites.build(),
        request_id=rid,
        raw=body,
    )
    result.metadata["api"] = "agent"
    if status:
        result.metadata["status"] = status
    if status == "incomplete":
        reason = as_dict(body.get("incomplete_details")).get("reason")
        result.metadata["incomplete_reason"] = reason if isinstance(reason, str) else "unknown"
    _provider_cost(result, u)
    return finish_usage(result, settings, have_usage=isinstance(usage, dict), searches=searches)


# ------------------------------------------------------------------ client


class PerplexityProvider(BaseProvider):
    """One pooled ``httpx.AsyncClient`` for the run; Bearer auth; no SDK (none is needed)."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        super().__init__(settings, secrets=secrets)
        n = self.pool_size
        self.api = settings.api if settings.api in ("sonar", "agent") else "sonar"
        self._http = httpx.AsyncClient(
            base_url=(settings.base_url or DEFAULT_BASE_URL).rstrip("/"),
            headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx.Timeout(self.timeout_s),
        )

    def _payload(self, prompt: str) -> tuple[str, dict[str, Any]]:
        s = self.settings
        if self.api == "agent":
            body: dict[str, Any] = {"input": prompt}
            # "preset:fast" (or "preset/fast") selects a Perplexity preset instead of a model.
            for prefix in ("preset:", "preset/"):
                if self.model.startswith(prefix):
                    body["preset"] = self.model[len(prefix):]
                    break
            else:
                body["model"] = self.model
            if s.web_search:
                body["tools"] = [{"type": "web_search"}]
            if s.max_tokens:
                body["max_output_tokens"] = s.max_tokens
            return AGENT_PATH, body
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": s.max_tokens,
        }
        if s.web_search:
            body["web_search_options"] = {"search_context_size": s.search_context_size}
        else:
            body["disable_search"] = True
        return SONAR_PATH, body

    async def ask(self, prompt: str) -> ProviderResult:
        path, payload = self._payload(prompt)
        start = time.perf_counter()
        try:
            resp = await self._http.post(path, json=payload)
            text = resp.text
        except httpx.TimeoutException as e:
            raise transport_error(PLATFORM, e, self.secrets, timeout=True) from None
        except httpx.HTTPError as e:
            raise transport_error(PLATFORM, e, self.secrets, timeout=False) from None
        except Exception as e:
            raise unexpected(PLATFORM, e, self.secrets) from None
        latency = elapsed_ms(start)
        rid = resp.headers.get("x-request-id")
        if resp.status_code != 200:
            try:
                err_body: Any = resp.json()
            except ValueError:
                err_body = text[:500]
            detail = error_text(err_body, fallback=resp.reason_phrase)
            wait = None
            if resp.status_code == 429:
                wait = parse_retry_after(resp.headers)
                if wait is None:
                    wait = retry_from_message(detail)
            raise classify_status(
                PLATFORM, resp.status_code, detail, self.secrets, retry_after=wait, request_id=rid
            )
        body = decode_json(text, platform=PLATFORM)
        parse = parse_agent if self.api == "agent" else parse_sonar
        result = parse(body, self.settings, latency_ms=latency, request_id=rid, secrets=self.secrets)
        result.metadata["web_search"] = self.settings.web_search
        return result

    async def aclose(self) -> None:
        await self._http.aclose()
