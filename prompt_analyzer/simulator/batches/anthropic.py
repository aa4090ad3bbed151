"""Anthropic Message Batches, as ``anthropic`` 2.x calls them (``client.messages.batches``).

    POST {base}/v1/messages/batches                  {"requests": [{"custom_id", "params"}]} -> MessageBatch
    GET  {base}/v1/messages/batches/{id}             -> MessageBatch (processing_status, request_counts)
    GET  {base}/v1/messages/batches?limit=&after_id= -> page (newest first)
    POST {base}/v1/messages/batches/{id}/cancel      -> MessageBatch (canceling, then ended)
    GET  {base}/v1/messages/batches/{id}/results     -> JSONL, at the batch's ``results_url``

Each ``params`` is answered by the live Messages format.  Result lines are ``{"custom_id", "result":
{"type": "succeeded", "message": {...}}}``, ``{"type": "errored", "error": {"type": "error", "error":
{"type", "message"}}}``, ``{"type": "expired"}`` or ``{"type": "canceled"}``.  Request counts are zero
but ``processing`` until the batch ends, as Anthropic documents.  Batches carry no metadata.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from aiohttp import web

from ..formats import anthropic
from ..formats.base import Json, new_id
from .core import (
    Job,
    Result,
    SimState,
    StateOf,
    book,
    guarded,
    iso,
    json_response,
    jsonl,
    new_job,
    newest_first,
    settle,
)

FORMAT = anthropic.FORMAT
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _error(status: int, message: str) -> web.Response:
    return json_response(status, FORMAT.error(status, message, f"req_{new_id(12)}"))


def _batch_object(request: web.Request, job: Job, state: SimState, root: str) -> Json:
    results = settle(job, state)
    ended = results is not None
    counts = {"processing": job.total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if results is not None:
        counts["processing"] = 0
        for r in results:
            key = {"ok": "succeeded", "error": "errored", "expired": "expired", "cancelled": "canceled"}[r.kind]
            counts[key] += 1
    status = "ended" if ended else "canceling" if job.cancelled_at is not None else "in_progress"
    url = f"{request.url.origin()}{root}/v1/messages/batches/{job.id}/results"
    return {
        "id": job.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
        "ended_at": iso(job.end_time()) if ended else None, "created_at": iso(job.created),
        "expires_at": iso(job.created + 86400), "archived_at": None,
        "cancel_initiated_at": iso(job.cancelled_at), "results_url": url if ended else None,
    }


def _line(r: Result) -> Json:
    if r.kind == "ok" and r.body is not None and r.status == 200:
        return {"custom_id": r.custom_id, "result": {"type": "succeeded", "message": r.body}}
    if r.kind == "expired":
        return {"custom_id": r.custom_id, "result": {"type": "expired"}}
    if r.kind == "cancelled":
        return {"custom_id": r.custom_id, "result": {"type": "canceled"}}
    body = r.body if isinstance(r.body, dict) else FORMAT.error(500, "error", r.request_id)
    return {"custom_id": r.custom_id, "result": {"type": "errored", "error": body}}


def register(app: web.Application, state_of: StateOf, root: str = "/anthropic") -> None:
    """The Message Batches routes under the Anthropic base path."""
    guard = guarded(state_of, FORMAT)
    base = f"{root}/v1/messages/batches"

    def job_of(request: web.Request) -> Job | None:
        job = book(request).jobs.get(request.match_info["batch_id"])
        return job if job is not None and job.platform == FORMAT.platform else None

    async def create(request: web.Request, state: SimState) -> web.StreamResponse:
        raw = await request.read()
        if len(raw) > MAX_BYTES:
            return _error(413, f"Request too large: a batch is at most {MAX_BYTES} bytes.")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "The request body is not valid JSON.")
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs or len(reqs) > MAX_REQUESTS:
            return _error(400, f"requests: between 1 and {MAX_REQUESTS} requests are required")
        requests: list[tuple[str, Json]] = []
        seen: set[str] = set()
        for i, item in enumerate(reqs):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return _error(400, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if custom_id in seen:
                return _error(400, f"requests.{i}.custom_id: duplicate custom_id {custom_id!r}")
            if not isinstance(params, dict):
                return _error(400, f"requests.{i}.params: Field required")
            seen.add(custom_id)
            requests.append((custom_id, params))
        job = new_job(request, state, FORMAT.platform, FORMAT, None, requests, prefix="msgbatch_", labels={})
        book(request).add(job, state)
        delay = state.config.batch_create_delay_s
        if delay > 0:  # the batch exists; its creator waits for the answer (a crash lands here in tests)
            await asyncio.sleep(delay)
        return json_response(200, _batch_object(request, job, state, root))

    async def retrieve(request: web.Request, state: SimState) -> web.StreamResponse:
        job = job_of(request)
        if job is None:
            return _error(404, f"message_batch not found: {request.match_info['batch_id']}")
        return json_response(200, _batch_object(request, job, state, root))

    async def cancel(request: web.Request, state: SimState) -> web.StreamResponse:
        job = job_of(request)
        if job is None:
            return _error(404, f"message_batch not found: {request.match_info['batch_id']}")
        if job.phase() == "in_progress":
            job.cancelled_at = time.time()
        return json_response(200, _batch_object(request, job, state, root))

    async def results(request: web.Request, state: SimState) -> web.StreamResponse:
        job = job_of(request)
        if job is None:
            return _error(404, f"message_batch not found: {request.match_info['batch_id']}")
        out = settle(job, state)
        if out is None:
            return _error(400, "Results are not available until the batch has ended.")
        return web.Response(status=200, body=jsonl([_line(r) for r in out]),
                            content_type="application/binary")

    async def list_(request: web.Request, state: SimState) -> web.StreamResponse:
        jobs = newest_first(request, FORMAT.platform, request.query.get("after_id"))
        limit = max(1, min(1000, int(request.query.get("limit", "20"))))
        page = jobs[:limit]
        return json_response(200, {"data": [_batch_object(request, j, state, root) for j in page],
                                   "has_more": len(jobs) > limit, "first_id": page[0].id if page else None,
                                   "last_id": page[-1].id if page else None})

    app.router.add_post(base, guard(create))
    app.router.add_get(base, guard(list_))
    app.router.add_get(f"{base}/{{batch_id}}", guard(retrieve))
    app.router.add_post(f"{base}/{{batch_id}}/cancel", guard(cancel))
    app.router.add_get(f"{base}/{{batch_id}}/results", guard(results))
