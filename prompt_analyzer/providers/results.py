"""What a call gives the engine, whatever the platform: one :class:`ProviderResult` and its citations.

:class:`Answer` and :class:`Usage` are what a wire-format parser reads from a body; the provider's
base class turns them into the :class:`ProviderResult` (cost, flags, latency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .ratelimit_headers import StatedLimits
from .sites import site_of

__all__ = ["Answer", "Citation", "ProviderResult", "Usage"]


@dataclass(frozen=True, slots=True)
class Citation:
    url: str  # normalised (see providers.citations.normalize_url)
    domain: str  # host without "www." (Gemini: the site its redirect link stands for)
    title: str | None
    position: int  # 1-based order of first appearance within the answer
    cited: bool  # True: the answer text cites it; False: only retrieved
    site: str = ""  # registrable domain of ``domain`` (providers.sites.site_of); derived when not given
    # Where the URL came from when it is not the provider's own (Gemini: the grounding redirect, see
    # providers.redirects); stored in ai_response_citations.metadata.
    metadata: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not self.site and self.domain:
            object.__setattr__(self, "site", site_of(self.domain))


@dataclass(slots=True)
class ProviderResult:
    text: str
    model_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost: Decimal | None  # USD; None when usage is missing
    latency_ms: int
    citations: list[Citation] = field(default_factory=list)
    request_id: str | None = None
    raw: Any = None  # the decoded JSON response, kept for reparsing
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. provider_cost, searches, usage_missing
    limits: StatedLimits | None = None  # the rate limits the answer's headers state (not stored)


@dataclass(slots=True)
class Usage:
    """What one body says about billing, as the provider reported it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None  # None: the base class adds input and output
    reported: bool = False  # the body had a usage object at all
    searches: int = 0  # billed web searches / grounded requests
    search_context_size: str | None = None  # Perplexity Sonar's request-fee tier


@dataclass(slots=True)
class Answer:
    """One body read by a wire-format parser: everything but cost, latency and the raw body."""

    text: str
    model_version: str | None
    usage: Usage
    citations: list[Citation] = field(default_factory=list)
    request_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
