"""Perplexity over plain httpx (no SDK is needed): Sonar chat completions (``api="sonar"``, parsed by
:mod:`.perplexity_sonar`) or the Agent API (``api="agent"``, parsed by :mod:`.perplexity_agent`).

Both APIs answer errors with plain HTTP statuses, classified by the base class like every SDK's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ..config import PlatformSettings
from . import perplexity_agent, perplexity_sonar
from .base import BaseProvider, ModelsList, Reply
from .errors import ProviderError, error_text
from .json_fields import as_dict, as_list
from .results import Answer

DEFAULT_BASE_URL = "https://api.perplexity.ai"
SONAR_PATH = "/chat/completions"
AGENT_PATH = "/v1/agent"
MODELS_PATH = "/router/v1/models"


class PerplexityProvider(BaseProvider):
    """One pooled ``httpx.AsyncClient`` for the run; Bearer auth."""

    states_limits = False  # no rate-limit headers

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

    async def send(self, prompt: str) -> Reply:
        path, payload = self._payload(prompt)
        resp = await self._http.post(path, json=payload)
        text = resp.text
        rid = resp.headers.get("x-request-id")
        if resp.status_code != 200:
            try:
                err_body: Any = resp.json()
            except ValueError:
                err_body = text[:500]
            raise self.http_error(
                resp.status_code, error_text(err_body, fallback=resp.reason_phrase),
                headers=resp.headers, body=err_body, request_id=rid,
            )
        return Reply(text, rid, resp.headers)

    async def models(self) -> ModelsList:
        """Perplexity's models list (``GET /router/v1/models``, its Agent API gateway)."""
        resp = await self._http.get(MODELS_PATH)
        if resp.status_code != 200:
            try:
                err_body: Any = resp.json()
            except ValueError:
                err_body = resp.text[:500]
            raise self.http_error(resp.status_code, error_text(err_body, fallback=resp.reason_phrase),
                                  headers=resp.headers, body=err_body, request_id=resp.headers.get("x-request-id"))
        data = as_list(as_dict(self.decode(resp.content)).get("data"))
        return ModelsList([str(as_dict(m).get("id")) for m in data if as_dict(m).get("id")],
                          self.stated_limits(resp.headers))

    def map_error(self, exc: Exception) -> ProviderError | None:
        return None  # httpx's transport errors are classified by the base; statuses by send()

    def parse(self, body: Any, request_id: str | None) -> Answer:
        if self.api == "agent":
            return perplexity_agent.parse(body, request_id)
        return perplexity_sonar.parse(body, request_id, search_context_size=self.settings.search_context_size)

    async def aclose(self) -> None:
        await self._http.aclose()
