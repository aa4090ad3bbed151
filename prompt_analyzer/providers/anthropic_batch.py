"""Anthropic Message Batches through the official SDK: ``messages.batches.create`` / ``retrieve`` /
``list`` and the results JSONL (read raw from ``results_url``, so the stored body is the wire body).

Each request's ``params`` are the live Messages request (:meth:`ClaudeProvider.request_body`, the
``web_search`` server tool included: Message Batches accept every Messages feature); each
``succeeded`` message is read by the live Messages parser.

Message Batches keep no metadata, so a batch submitted by a process that died before recording its id
is found by elimination (:meth:`AnthropicBatchClient.find`): among the batches created since the
submit was recorded, one of exactly as many requests that no row of ours names; once it has ended, its
results must carry our custom_ids.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any

from ..statuses import ProviderBatchState
from .batch import BatchItem, BatchLimits, Encoded, RemoteBatch
from .claude import ClaudeProvider
from .errors import ProviderError, error_text
from .json_fields import as_dict, as_str

# The error types of an ``errored`` result, as the HTTP statuses the live API answers them with.
_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "overloaded_error": 529,
}
_FIND_PAGES = 5


class AnthropicBatchClient(ClaudeProvider):
    """Anthropic's Message Batches API on the run's ``AsyncAnthropic`` client."""

    provider = "anthropic"
    limits = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)

    def encode(self, custom_id: str, prompt: str) -> Encoded:
        request = {"custom_id": custom_id, "params": self.request_body(prompt)}
        size = len(json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()) + 1
        return Encoded(custom_id, request, size)

    async def submit(self, label: str, requests: Sequence[Encoded]) -> RemoteBatch:
        try:
            batch = await self._client.messages.batches.create(requests=[r.payload for r in requests])
        except Exception as e:
            raise self.classify(e) from None
        return self._remote(batch)

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        try:
            return self._remote(await self._client.messages.batches.retrieve(batch_id))
        except Exception as e:
            raise self.classify(e) from None

    async def find(
        self, label: str, since: datetime, custom_ids: Sequence[str], exclude: Collection[str] = ()
    ) -> RemoteBatch | None:
        """The oldest batch created since ``since`` holding ``len(custom_ids)`` requests that is not in
        ``exclude`` (ours already); an ended one must also answer our custom_ids."""
        want = set(custom_ids)
        candidates: list[RemoteBatch] = []
        try:
            page = await self._client.messages.batches.list(limit=100)
            for _ in range(_FIND_PAGES):
                older = False
                for b in page.data:
                    if b.created_at < since:
                        older = True
                        break
                    remote = self._remote(b)
                    if remote.id not in exclude and remote.total == len(want):
                        candidates.append(remote)
                if older or not page.has_next_page():
                    break
                page = await page.get_next_page()
            for remote in sorted(candidates, key=lambda r: r.created_at or since):
                if remote.state is ProviderBatchState.IN_PROGRESS:
                    return remote
                if {item.custom_id async for item in self.results(remote)} == want:
                    return remote
        except ProviderError:
            raise
        except Exception as e:
            raise self.classify(e) from None
        return None

    async def results(self, remote: RemoteBatch) -> AsyncIterator[BatchItem]:
        try:
            raw = await self._client.messages.batches.with_raw_response.results(remote.id)
            data = await raw.http_response.aread()
        except Exception as e:
            raise self.classify(e) from None
        for line in data.splitlines():
            if line.strip():
                yield self._item(json.loads(line))

    def _item(self, line: dict[str, Any]) -> BatchItem:
        custom_id = str(line.get("custom_id"))
        result = as_dict(line.get("result"))
        kind = result.get("type")
        if kind == "succeeded":
            message = result.get("message")
            try:
                return BatchItem(custom_id, result=self.result(message, request_id=None, batch=True))
            except ProviderError as e:
                return BatchItem(custom_id, error=e)
        if kind == "errored":
            body = result.get("error")
            err_type = as_str(as_dict(as_dict(body).get("error")).get("type")) or "api_error"
            status = _ERROR_STATUS.get(err_type, 500)
            rid = as_str(as_dict(body).get("request_id"))
            return BatchItem(custom_id, error=self.http_error(status, error_text(body), body=body, request_id=rid))
        return BatchItem(custom_id)  # expired or canceled: never processed

    def _remote(self, b: Any) -> RemoteBatch:
        c = b.request_counts
        total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
        if b.processing_status != "ended":
            state = ProviderBatchState.IN_PROGRESS
        elif c.canceled and b.cancel_initiated_at is not None:
            state = ProviderBatchState.CANCELLED
        elif c.expired:
            state = ProviderBatchState.EXPIRED
        else:
            state = ProviderBatchState.ENDED
        return RemoteBatch(
            id=b.id, state=state, provider_state=b.processing_status, total=total, completed=c.succeeded,
            failed=c.errored, created_at=b.created_at, expires_at=b.expires_at, ended_at=b.ended_at,
        )
