"""What a call gives the engine, whatever the platform: one :class:`ProviderResult` and its citations."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["Citation", "ProviderResult"]


@dataclass(frozen=True, slots=True)
class Citation:
    url: str  # normalised (see providers.citations.normalize_url)
    domain: str  # host without "www."
    title: str | None
    position: int  # 1-based order of first appearance within the answer
    cited: bool  # True: the answer text cites it; False: only retrieved


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
