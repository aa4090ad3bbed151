"""Gemini Batch Mode through google-genai: ``batches.create`` with inline requests, ``batches.get`` and
``batches.list`` (Gemini Developer API).

Each inline request is the live request (the same ``GenerateContentConfig``, Google Search grounding
included: Batch Mode takes the generateContent tools); each answer is read by the live generateContent
parser.  google-genai returns batch answers as SDK objects, not raw JSON: they are dumped (snake_case,
which the parser reads as it reads camelCase) and that dump is what is stored.  The batch's
``display_name`` is our ``provider_batches`` id: an orphan is found by it.  Grounding redirects are
resolved as a live answer's are (:meth:`GeminiProvider.complete`).  Inline requests are limited
to 20 MB per batch; larger sets are split into several batches.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any

from google.genai import types

from ..statuses import ProviderBatchState
from .batch import BatchItem, BatchLimits, Encoded, RemoteBatch
from .errors import ProviderError
from .gemini import GeminiProvider

_STATES = {
    "JOB_STATE_PENDING": ProviderBatchState.IN_PROGRESS, "JOB_STATE_QUEUED": ProviderBatchState.IN_PROGRESS,
    "JOB_STATE_RUNNING": ProviderBatchState.IN_PROGRESS, "JOB_STATE_SUCCEEDED": ProviderBatchState.ENDED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": ProviderBatchState.ENDED, "JOB_STATE_FAILED": ProviderBatchState.FAILED,
    "JOB_STATE_CANCELLING": ProviderBatchState.IN_PROGRESS, "JOB_STATE_CANCELLED": ProviderBatchState.CANCELLED,
    "JOB_STATE_EXPIRED": ProviderBatchState.EXPIRED,
}
_OVERHEAD = 256  # bytes of JSON around one inline request's prompt
_FIND_PAGES = 5


class GeminiBatchClient(GeminiProvider):
    """Gemini's Batch Mode on the run's ``genai.Client``."""

    provider = "gemini"
    limits = BatchLimits(max_requests=50_000, max_bytes=19 * 1024 * 1024)  # inline: 20 MB per request

    def encode(self, custom_id: str, prompt: str) -> Encoded:
        request = types.InlinedRequest(contents=prompt, config=self._request_config, metadata={"key": custom_id})
        return Encoded(custom_id, request, len(json.dumps(prompt, ensure_ascii=False).encode()) + _OVERHEAD)

    async def submit(self, label: str, requests: Sequence[Encoded]) -> RemoteBatch:
        try:
            job = await self._client.aio.batches.create(
                model=self.model, src=[r.payload for r in requests],
                config=types.CreateBatchJobConfig(display_name=label))
        except Exception as e:
            raise self.classify(e) from None
        return self._remote(job, total=len(requests))

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        try:
            return self._remote(await self._client.aio.batches.get(name=batch_id))
        except Exception as e:
            raise self.classify(e) from None

    async def find(
        self, label: str, since: datetime, custom_ids: Sequence[str], exclude: Collection[str] = ()
    ) -> RemoteBatch | None:
        """The newest batch whose display name is ``label`` (listed newest first)."""
        try:
            pager = await self._client.aio.batches.list(config=types.ListBatchJobsConfig(page_size=100))
            seen = 0
            async for job in pager:
                seen += 1
                if job.display_name == label:
                    return self._remote(job)
                if (job.create_time is not None and job.create_time < since) or seen >= 100 * _FIND_PAGES:
                    return None
        except Exception as e:
            raise self.classify(e) from None
        return None

    async def results(self, remote: RemoteBatch) -> AsyncIterator[BatchItem]:
        for r in remote.refs.get("inlined", []):
            custom_id = (r.metadata or {}).get("key", "")
            if r.response is not None:
                body = r.response.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"})
                try:
                    result = self.result(body, batch=True)
                except ProviderError as e:
                    yield BatchItem(custom_id, error=e)
                    continue
                yield BatchItem(custom_id, result=await self.complete(result))  # the real pages, as live
            elif r.error is not None:
                err = {"error": {"code": r.error.code, "message": r.error.message}}
                yield BatchItem(custom_id, error=self.http_error(int(r.error.code or 500), r.error.message or "",
                                                                 body=err))

    def _remote(self, job: Any, total: int | None = None) -> RemoteBatch:
        state_name = job.state.value if job.state is not None else "JOB_STATE_PENDING"
        inlined = list(job.dest.inlined_responses or []) if job.dest is not None else []
        ok = sum(1 for r in inlined if r.response is not None)
        return RemoteBatch(
            id=str(job.name), state=_STATES.get(state_name, ProviderBatchState.IN_PROGRESS), provider_state=state_name,
            total=total or len(inlined), completed=ok, failed=len(inlined) - ok, label=job.display_name,
            created_at=job.create_time, ended_at=job.end_time,
            error=job.error.message if job.error is not None else None, refs={"inlined": inlined},
        )
