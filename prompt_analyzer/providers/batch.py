"""The providers' batch APIs behind one interface: submit, look up, poll, read results.

A batch client is the platform's live client (same key, same SDK client, same request body, same
parser, same error classification) with the batch API's calls added: :mod:`.openai_batch` (OpenAI
Batch: a JSONL file of ``/v1/responses`` requests), :mod:`.anthropic_batch` (Message Batches) and
:mod:`.gemini_batch` (Gemini Batch Mode, inline requests).  Every answer goes through the live
parser and is priced at the batch price (:func:`~.pricing.price_for` with ``batch=True``).

Each request's ``custom_id`` is our pair's ``ai_responses`` id; each submit carries a *label* (our
``provider_batches`` id) where the API keeps one, so a batch submitted by a process that died before
recording the provider's id is found again (:meth:`BatchClient.find`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..config import PlatformSettings
from ..statuses import ProviderBatchState
from .errors import ProviderError
from .results import ProviderResult

__all__ = ["BatchClient", "BatchItem", "BatchLimits", "Encoded", "RemoteBatch", "batch_support", "make_batch_client"]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one provider batch may hold (the engine splits a platform's pairs at these)."""

    max_requests: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Encoded:
    """One request ready for a batch: its custom_id, the provider's request object and its size."""

    custom_id: str
    payload: Any
    size: int


@dataclass(slots=True)
class RemoteBatch:
    """A provider batch as the provider last described it."""

    id: str
    state: ProviderBatchState  # IN_PROGRESS, ENDED, EXPIRED, CANCELLED or FAILED
    provider_state: str
    total: int = 0
    completed: int = 0  # processed and answered
    failed: int = 0  # processed and failed
    label: str | None = None  # our provider_batches id, where the API keeps one
    created_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None  # why the whole batch failed
    refs: dict[str, Any] = field(default_factory=dict)  # where the results are (file ids, inline answers)


@dataclass(slots=True)
class BatchItem:
    """One request's outcome: an answer, an error (classified as a live call's would be), or nothing
    (``unprocessed``: the batch expired or was cancelled before it got to it)."""

    custom_id: str
    result: ProviderResult | None = None
    error: ProviderError | None = None

    @property
    def unprocessed(self) -> bool:
        return self.result is None and self.error is None


class BatchClient(Protocol):
    """One platform's batch API for a run (a live provider with the batch calls added)."""

    name: str
    model: str
    provider: str  # "openai" | "anthropic" | "gemini": the provider_batches.provider value
    limits: BatchLimits

    def encode(self, custom_id: str, prompt: str) -> Encoded:
        """The request for ``prompt`` as this batch API takes it (the live request body, wrapped)."""
        ...

    async def submit(self, label: str, requests: Sequence[Encoded]) -> RemoteBatch:
        """Create one provider batch of ``requests``, labelled ``label``; raise :class:`ProviderError`."""
        ...

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        ...

    async def find(
        self, label: str, since: datetime, custom_ids: Sequence[str], exclude: Collection[str] = ()
    ) -> RemoteBatch | None:
        """The batch a crashed submit of ``label`` created, if the provider has one (created after
        ``since``); ``custom_ids`` are the requests it was to hold and ``exclude`` the provider ids we
        recorded already, for APIs that keep no label."""
        ...

    def results(self, remote: RemoteBatch) -> AsyncIterator[BatchItem]:
        """Every request's outcome of an ended (or expired / cancelled) batch."""
        ...

    async def aclose(self) -> None:
        ...


def batch_support(settings: PlatformSettings) -> str | None:
    """Why this platform cannot use a batch API (None: it can)."""
    from .batch_clients import BATCH_CLIENTS

    kind = settings.kind_name
    if kind not in BATCH_CLIENTS:
        return f"{kind} has no batch API"
    return None


def make_batch_client(settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> BatchClient:
    """The batch client for the platform's kind; ``ValueError`` when it has none (see :func:`batch_support`)."""
    from .batch_clients import BATCH_CLIENTS

    why = batch_support(settings)
    if why is not None:
        raise ValueError(f"{settings.name}: {why}")
    client: BatchClient = BATCH_CLIENTS[settings.kind_name](settings, secrets=secrets)
    return client
