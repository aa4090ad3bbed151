"""Gemini Batch Mode, as ``google-genai`` calls it on the Gemini Developer API (``client.batches``).

    POST {base}/{version}/models/{model}:batchGenerateContent
         {"batch": {"displayName", "inputConfig": {"requests": {"requests": [{"request", "metadata"}]}}}}
         -> an operation whose ``metadata`` is the batch (``name`` batches/..., ``state`` BATCH_STATE_*)
    GET  {base}/{version}/batches/{id}          -> the same, with ``metadata.output.inlinedResponses`` once done
    GET  {base}/{version}/batches               -> {"operations": [...], "nextPageToken"}
    POST {base}/{version}/batches/{id}:cancel

Each inline ``request`` (a generateContent body, ``tools`` with ``googleSearch`` included) is answered
by the live generateContent format; ``inlinedResponses`` keep the requests' order and echo their
``metadata``; a failed request carries ``error: {code, message, status}`` instead of ``response``.
The batch's ``displayName`` is how an orphan is found again.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from ..formats import gemini
from ..formats.base import Json
from .core import (
    Job,
    Result,
    SimState,
    StateOf,
    authorized,
    book,
    guarded,
    iso,
    json_response,
    new_job,
    newest_first,
    settle,
)

FORMAT = gemini.FORMAT
MAX_INLINE_BYTES = 20 * 1024 * 1024
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
_STATES = {"in_progress": "BATCH_STATE_RUNNING", "ended": "BATCH_STATE_SUCCEEDED",
           "expired": "BATCH_STATE_EXPIRED", "cancelled": "BATCH_STATE_CANCELLED"}


def _error(status: int, message: str) -> web.Response:
    return json_response(status, FORMAT.error(status, message, ""))


def _inlined(r: Result, metadata: Json | None) -> Json:
    out: Json = {"metadata": metadata} if metadata else {}
    if r.status == 200 and r.body is not None:
        out["response"] = r.body
    else:
        err = (r.body or {}).get("error") or {}
        out["error"] = {"code": r.status or 500, "message": err.get("message", "internal error"),
                        "status": err.get("status", "INTERNAL")}
    return out


def _operation(job: Job, state: SimState) -> Json:
    results = settle(job, state)
    phase = job.phase()
    meta: Json = {
        "@type": _TYPE, "model": f"models/{job.model}", "displayName": job.labels.get("display_name", ""),
        "createTime": iso(job.created), "updateTime": iso(time.time()), "state": _STATES[phase],
        "name": job.id,
        "batchStats": {"requestCount": str(job.total), "pendingRequestCount": str(job.total - job.done_count())},
    }
    op: Json = {"name": job.id, "metadata": meta}
    if results is not None:
        meta["endTime"] = iso(job.end_time())
        metadata = job.labels.get("metadata") or []
        done = [_inlined(r, metadata[i] if i < len(metadata) else None)
                for i, r in enumerate(results) if r.kind in ("ok", "error")]
        ok = sum(1 for r in results if r.kind == "ok" and r.status == 200)
        meta["batchStats"].update({"successfulRequestCount": str(ok),
                                   "failedRequestCount": str(len(done) - ok), "pendingRequestCount": "0"})
        output = {"inlinedResponses": {"inlinedResponses": done}}
        meta["output"] = output
        op["done"] = True
        op["response"] = {"@type": _TYPE + "Output", **output}
    return op


def register(app: web.Application, state_of: StateOf, root: str = "/gemini") -> None:
    """The batch routes under the Gemini base path (``create`` is reached through the server's
    ``models/{model}:action`` route: :func:`create`)."""
    guard = guarded(state_of, FORMAT)

    async def retrieve(request: web.Request, state: SimState) -> web.StreamResponse:
        batch_id, _, action = request.match_info["batch_id"].partition(":")
        job = book(request).jobs.get("batches/" + batch_id)
        if job is None or job.platform != FORMAT.platform or action:
            return _error(404, f"Batch batches/{batch_id} not found.")
        return json_response(200, _operation(job, state))

    async def cancel(request: web.Request, state: SimState) -> web.StreamResponse:
        batch_id, _, action = request.match_info["batch_id"].partition(":")
        job = book(request).jobs.get("batches/" + batch_id)
        if job is None or action != "cancel":
            return _error(404, f"Batch batches/{batch_id} not found.")
        if job.phase() == "in_progress":
            job.cancelled_at = time.time()
        return json_response(200, {})

    async def list_(request: web.Request, state: SimState) -> web.StreamResponse:
        jobs = newest_first(request, FORMAT.platform, None)
        start = int(request.query.get("pageToken") or 0)
        size = max(1, min(1000, int(request.query.get("pageSize", "50"))))
        page = jobs[start:start + size]
        body: Json = {"operations": [_operation(j, state) for j in page]}
        if start + size < len(jobs):
            body["nextPageToken"] = str(start + size)
        return json_response(200, body)

    app.router.add_get(f"{root}/{{version}}/batches", guard(list_))
    app.router.add_get(f"{root}/{{version}}/batches/{{batch_id}}", guard(retrieve))
    app.router.add_post(f"{root}/{{version}}/batches/{{batch_id}}", guard(cancel))


async def create(request: web.Request, state: SimState, model: str) -> web.StreamResponse:
    """``models/{model}:batchGenerateContent`` with inline requests."""
    if (denied := authorized(request, state, FORMAT)) is not None:
        return denied
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "Invalid JSON payload received.")
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, dict):
        return _error(400, "* BatchGenerateContentRequest.batch: batch is required")
    config = batch.get("inputConfig") or {}
    if "fileName" in config:
        return _error(400, "The simulator takes inline requests only (inputConfig.requests).")
    items = (config.get("requests") or {}).get("requests")
    if not isinstance(items, list) or not items:
        return _error(400, "* BatchGenerateContentRequest.batch.input_config: requests are required")
    if len(raw) > MAX_INLINE_BYTES:
        return _error(400, f"Inline requests are limited to {MAX_INLINE_BYTES} bytes: use a file.")
    requests: list[tuple[str, Json]] = []
    metadata: list[Json | None] = []
    for i, item in enumerate(items):
        req = item.get("request") if isinstance(item, dict) else None
        if not isinstance(req, dict):
            return _error(400, f"* requests[{i}].request is required")
        meta = item.get("metadata")
        metadata.append(meta if isinstance(meta, dict) else None)
        requests.append((str((meta or {}).get("key", i)) if isinstance(meta, dict) else str(i), req))
    name = model.removeprefix("models/")
    job = new_job(request, state, FORMAT.platform, FORMAT, name, requests, prefix="batches/",
                  labels={"display_name": batch.get("displayName", ""), "metadata": metadata})
    book(request).add(job, state)
    delay = state.config.batch_create_delay_s
    if delay > 0:  # the batch exists; its creator waits for the answer (a crash lands here in tests)
        await asyncio.sleep(delay)
    return json_response(200, _operation(job, state))
