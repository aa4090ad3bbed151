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
- clients (how to send, which SDK errors mean what): ``openai_``, ``claude``, ``gemini``, ``perplexity``;
- wire formats (a body to an answer): ``openai_responses`` (also Perplexity's Agent API messages),
  ``anthropic_messages``, ``gemini_generate``, ``perplexity_sonar``, ``perplexity_agent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..config import PlatformSettings
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

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def make_provider(settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> Provider:
    """The client for ``settings.name``; ``secrets`` are scrubbed from every error message.

    Raises :class:`AuthError` when the platform has no API key, ``ValueError`` for an unknown name.
    """
    name = settings.name
    if name == "openai":
        from .openai_ import OpenAIProvider

        return OpenAIProvider(settings, secrets=secrets)
    if name == "claude":
        from .claude import ClaudeProvider

        return ClaudeProvider(settings, secrets=secrets)
    if name == "gemini":
        from .gemini import GeminiProvider

        return GeminiProvider(settings, secrets=secrets)
    if name == "perplexity":
        from .perplexity import PerplexityProvider

        return PerplexityProvider(settings, secrets=secrets)
    raise ValueError(f"unknown platform: {name!r}")
