"""Provider clients: ask one platform one prompt, get one :class:`ProviderResult` or one classified error.

Clients never retry (SDK retries are off); the engine owns retries, pacing and circuit breaking.
Create one provider per platform per run with :func:`make_provider` and ``aclose()`` it at the end:
each holds one connection pool sized to the platform's ``max_concurrency``.

One place per policy:

- ``base``: the one ``ask()`` (timing, error classification, decoding, parsing, cost);
- ``errors``: the error tree and the one status classification; ``retry_hints``: the Retry-After
  parser and the other wait hints; ``results``: the result shapes; ``pricing``: prices and cost;
  ``citations`` / ``sites``: URL normalisation, dedupe, positions, domains and registrable domains;
  ``json_fields``: safe reads of decoded JSON;
- clients (how to send, which SDK errors mean what): ``openai_``, ``claude``, ``gemini``, ``perplexity``,
  ``openai_chat`` (any OpenAI-compatible Chat Completions endpoint); which client serves a platform is
  the registry's (:mod:`prompt_analyzer.platforms`);
- wire formats (a body to an answer): ``openai_responses`` (also Perplexity's Agent API messages),
  ``anthropic_messages``, ``gemini_generate``, ``perplexity_sonar``, ``perplexity_agent``,
  ``chat_completions`` (openai-chat; Sonar shares its envelope).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from ..config import PlatformSettings
from ..platforms import KINDS
from ..redact import scrub
from .errors import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from .results import Citation, ProviderResult

__all__ = [
    "AuthError",
    "Citation",
    "MalformedResponse",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderResult",
    "QuotaExhausted",
    "RateLimited",
    "TransientError",
    "make_provider",
    "preload",
    "scrub",
]


@runtime_checkable
class Provider(Protocol):
    """One platform's client for a run."""

    name: str
    model: str

    async def ask(self, prompt: str) -> ProviderResult:
        """Ask once; raise only :class:`ProviderError` subclasses."""
        ...

    async def complete(self, result: ProviderResult) -> ProviderResult:
        """A received answer finished without another paid call (bounded); the result to record."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def preload(kinds: Iterable[str]) -> threading.Thread:
    """Import the clients of ``kinds`` in a background thread: their SDKs take a second or more to
    import, which would otherwise all stand between the start of ``analyze run`` and its first request.
    Meanwhile the main thread connects, checks the schema and creates the batch (mostly waiting on the
    database).  Errors are left for :func:`make_provider` to raise where they can be reported."""

    def work() -> None:
        for name in dict.fromkeys(kinds):
            with contextlib.suppress(Exception):
                KINDS[name].client_class()

    thread = threading.Thread(target=work, name="preload-clients", daemon=True)
    thread.start()
    return thread


def make_provider(settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> Provider:
    """The client for the platform's kind (:data:`prompt_analyzer.platforms.KINDS`); ``secrets`` are
    scrubbed from every error message.

    Raises :class:`AuthError` when the platform has no API key, ``ValueError`` for an unknown kind.
    """
    try:
        kind = KINDS[settings.kind_name]
    except KeyError:
        raise ValueError(f"unknown platform kind {settings.kind_name!r} (known: {', '.join(KINDS)})") from None
    client: Provider = kind.client_class()(settings, secrets=secrets)
    return client
