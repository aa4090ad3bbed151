"""OpenAI Batch through the official SDK: ``files.create`` (a JSONL of ``/v1/responses`` requests),
``batches.create`` / ``retrieve`` / ``list``, and ``files.content`` for the output and error files.

Every line's body is the live request (:meth:`OpenAIProvider.request_body`, web search included: the
Batch API takes ``/v1/responses`` with tools); every answer is read by the live Responses parser.  The
batch carries ``metadata={"prompt_analyzer": <our provider_batches id>}``, which is how an orphan (a
batch created by a process that died before recording its id) is found on resume.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ..statuses import ProviderBatchState
from .batch import BatchItem, BatchLimits, Encoded, RemoteBatch
from .errors import ProviderError, error_text
from .json_fields import as_dict, as_int, as_str
from .openai_ import OpenAIProvider

ENDPOINT: Final[Literal["/v1/responses"]] = "/v1/responses"
LABEL_KEY = "prompt_analyzer"
_STATES = {
    "validating": ProviderBatchState.IN_PROGRESS, "in_progress": ProviderBatchState.IN_PROGRESS,
    "finalizing": ProviderBatchState.IN_PROGRESS, "cancelling": ProviderBatchState.IN_PROGRESS,
    "completed": ProviderBatchState.ENDED, "expired": ProviderBatchState.EXPIRED,
    "cancelled": ProviderBatchState.CANCELLED, "failed": ProviderBatchState.FAILED,
}
_FIND_PAGES = 5  # list pages (100 batches each) searched for an orphan, newest first


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


class OpenAIBatchClient(OpenAIProvider):
    """OpenAI's Batch API on the run's ``AsyncOpenAI`` client."""

    provider = "openai"
    limits = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)

    def encode(self, custom_id: str, prompt: str) -> Encoded:
        line = json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                           "body": self.request_body(prompt)}, ensure_ascii=False, separators=(",", ":"))
        data = line.encode() + b"\n"
        return Encoded(custom_id, data, len(data))

    async def submit(self, label: str, requests: Sequence[Encoded]) -> RemoteBatch:
        try:
            upload = await self._client.files.create(
                file=(f"prompt-analyzer-{label}.jsonl", b"".join(r.payload for r in requests)), purpose="batch")
            batch = await self._client.batches.create(
                input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h", metadata={LABEL_KEY: label})
        except ProviderError:
            raise
        except Exception as e:
            raise self.classify(e) from None
        return self._remote(batch)

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        try:
            return self._remote(await self._client.batches.retrieve(batch_id))
        except Exception as e:
            raise self.classify(e) from None

    async def find(
        self, label: str, since: datetime, custom_ids: Sequence[str], exclude: Collection[str] = ()
    ) -> RemoteBatch | None:
        """The newest batch whose metadata names ``label`` (batches are listed newest first)."""
        try:
            page = await self._client.batches.list(limit=100)
            for _ in range(_FIND_PAGES):
                for b in page.data:
                    if (b.metadata or {}).get(LABEL_KEY) == label:
                        return self._remote(b)
                    if _ts(b.created_at) is not None and _ts(b.created_at) < since:  # type: ignore[operator]
                        return None
                if not page.has_next_page():
                    return None
                page = await page.get_next_page()
        except Exception as e:
            raise self.classify(e) from None
        return None

    async def results(self, remote: RemoteBatch) -> AsyncIterator[BatchItem]:
        for key in ("output_file_id", "error_file_id"):
            fid = remote.refs.get(key)
            if not fid:
                continue
            try:
                text = (await self._client.files.content(fid)).text
            except Exception as e:
                raise self.classify(e) from None
            for raw in text.splitlines():
                if raw.strip():
                    yield self._item(json.loads(raw))

    def _item(self, line: dict[str, Any]) -> BatchItem:
        custom_id = str(line.get("custom_id"))
        response = as_dict(line.get("response"))
        if not response:  # batch_expired / batch_cancelled: never processed
            return BatchItem(custom_id)
        status = as_int(response.get("status_code")) or 0
        body = response.get("body")
        rid = as_str(response.get("request_id"))
        if status == 200:
            try:
                return BatchItem(custom_id, result=self.result(body, request_id=rid, batch=True))
            except ProviderError as e:
                return BatchItem(custom_id, error=e)
        return BatchItem(custom_id, error=self.http_error(status, error_text(body), body=body, request_id=rid))

    def _remote(self, b: Any) -> RemoteBatch:
        counts = b.request_counts
        return RemoteBatch(
            id=b.id, state=_STATES.get(b.status, ProviderBatchState.IN_PROGRESS), provider_state=b.status,
            total=counts.total if counts else 0, completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0, label=(b.metadata or {}).get(LABEL_KEY),
            created_at=_ts(b.created_at), expires_at=_ts(b.expires_at),
            ended_at=_ts(b.completed_at or b.expired_at or b.cancelled_at or b.failed_at),
            error="; ".join(e.message or "" for e in (b.errors.data or [])) if b.errors else None,
            refs={"output_file_id": b.output_file_id, "error_file_id": b.error_file_id},
        )
