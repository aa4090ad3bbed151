"""Which batch client serves each kind of platform (kinds without one run live in batch mode)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .anthropic_batch import AnthropicBatchClient
from .gemini_batch import GeminiBatchClient
from .openai_batch import OpenAIBatchClient

# kind -> class; each is called as cls(settings, secrets=...) and is a providers.batch.BatchClient
BATCH_CLIENTS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "openai": OpenAIBatchClient,
    "claude": AnthropicBatchClient,
    "gemini": GeminiBatchClient,
})

__all__ = ["BATCH_CLIENTS"]
