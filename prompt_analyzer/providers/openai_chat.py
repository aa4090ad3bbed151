"""Any OpenAI-compatible Chat Completions endpoint (xAI, DeepSeek, Mistral, OpenRouter, a local vLLM or
llama.cpp server) through the official SDK's ``client.chat.completions.create``; platform kind ``openai-chat``.

Same SDK as :mod:`.openai_`, hence the same exception tree: its error mapping and 429 hints are
:class:`~.openai_.OpenAIProvider`'s, shared (see :meth:`OpenAIChatProvider.map_error`).  The raw JSON
is read by :mod:`.chat_completions`.

**Web search.**  Compatible endpoints differ in how search is asked for, and many answer an unknown
parameter with a 400, so nothing beyond a plain chat completion is sent unless the platform says
which dialect its endpoint speaks, in the optional settings attribute ``search``:

=========  =====================================================================================
``none``   (default) a plain chat completion, whatever ``web_search`` says; the answer's metadata
           records ``web_search: false``
``openai`` ``web_search_options={}`` (OpenAI's ``*-search-*`` models, OpenRouter); sources come back
           as ``message.annotations``
``xai``    ``search_parameters={"mode": "auto", "return_citations": true}`` (xAI Live Search);
           sources come back as a top-level ``citations`` list
=========  =====================================================================================

Search parameters are sent only when ``web_search`` is true; with it false nothing is sent (not even
``mode: "off"``: an endpoint that has dropped a dialect refuses its parameters in every mode).

**The environment.**  ``AsyncOpenAI`` fills OpenAI-only headers from ``OPENAI_ORG_ID``,
``OPENAI_PROJECT_ID`` and ``OPENAI_CUSTOM_HEADERS`` (whose ``Authorization`` line would even replace
the platform's key).  They are meant for api.openai.com, not a third party's endpoint: this client
drops them (:func:`_explicit_headers`), and a ``base_url`` is required, so ``OPENAI_BASE_URL`` is
never the fallback either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import httpx2
import openai

from ..config import PlatformSettings
from . import chat_completions
from .base import BaseProvider, ModelsList, Reply
from .errors import ProviderError
from .openai_ import OpenAIProvider, rate_limit_wait
from .results import Answer, ProviderResult

__all__ = ["SEARCH_DIALECTS", "OpenAIChatProvider", "search_dialect"]

SEARCH_DIALECTS: Final = ("none", "openai", "xai")


def search_dialect(settings: object) -> str:
    """The platform's ``search`` setting (default ``"none"``); ``ValueError`` for anything else."""
    value = getattr(settings, "search", None)
    if value is None:
        return "none"
    if value not in SEARCH_DIALECTS:
        name = getattr(settings, "name", "?")
        raise ValueError(f"{name}: search must be one of {', '.join(SEARCH_DIALECTS)}; got {value!r}")
    return str(value)


def _explicit_headers(key: str) -> dict[str, Any]:
    """Default headers that win over what the SDK reads from the environment (``Omit()`` drops one)."""
    headers: dict[str, Any] = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
    for line in os.environ.get("OPENAI_CUSTOM_HEADERS", "").split("\n"):
        name, sep, _ = line.partition(":")
        name = name.strip()
        if sep and name and name.lower() != "authorization":
            headers[name] = openai.Omit()
    # An explicit Authorization makes the SDK drop the environment's (and it is what it would send anyway).
    headers["Authorization"] = f"Bearer {key}"
    return headers


class OpenAIChatProvider(BaseProvider):
    """One ``AsyncOpenAI`` for the run, at the platform's ``base_url``; pool sized to its concurrency."""

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        self.search = search_dialect(settings)
        if not settings.base_url:
            raise ValueError(f"{settings.name}: an OpenAI-compatible platform needs base_url")
        super().__init__(settings, secrets=secrets)
        self._http = openai.DefaultAsyncHttpxClient(**self.http_options(httpx2))
        self._client = openai.AsyncOpenAI(**self.sdk_options(self._http, settings.base_url),
                                          default_headers=_explicit_headers(self._key))

    @property
    def searching(self) -> bool:
        """Whether a call asks the endpoint to search."""
        return bool(self.settings.web_search) and self.search != "none"

    def request(self, prompt: str) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``prompt``."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.settings.max_tokens,
        }
        if self.searching and self.search == "openai":
            kwargs["web_search_options"] = {}
        elif self.searching and self.search == "xai":
            kwargs["extra_body"] = {"search_parameters": {"mode": "auto", "return_citations": True}}
        return kwargs

    async def send(self, prompt: str) -> Reply:
        raw = await self._client.chat.completions.with_raw_response.create(**self.request(prompt))
        return Reply(raw.http_response.text, raw.headers.get("x-request-id"), raw.headers)

    async def models(self) -> ModelsList:
        raw = await self._client.models.with_raw_response.list()
        page = raw.parse()  # a page is parsed synchronously
        return ModelsList([m.id for m in page.data], self.stated_limits(raw.headers))

    def map_error(self, exc: Exception) -> ProviderError | None:
        """The ``openai`` SDK's exceptions, exactly as :class:`OpenAIProvider` maps them.

        Its ``map_error`` uses only :class:`BaseProvider` methods, so it is called on this provider
        as it is (the ``cast`` only tells mypy so).
        """
        return OpenAIProvider.map_error(cast(OpenAIProvider, self), exc)

    def rate_limit_wait(self, headers: Mapping[str, str] | None, message: str, body: Any) -> float | None:
        return rate_limit_wait(headers, message)

    def parse(self, body: Any, request_id: str | None) -> Answer:
        return chat_completions.parse(body, request_id)

    def result(
        self, body: Any, *, latency_ms: int = 0, request_id: str | None = None, batch: bool = False
    ) -> ProviderResult:
        """The base class's result, with ``web_search`` saying whether search was asked for, and how."""
        result = super().result(body, latency_ms=latency_ms, request_id=request_id, batch=batch)
        result.metadata["web_search"] = self.searching
        result.metadata["search"] = self.search if self.searching else "none"
        return result

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
