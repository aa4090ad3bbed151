"""OpenAI Batch API: files (multipart upload, content) and batches, as ``openai`` 3.x calls them.

    POST {base}/files                      multipart: purpose=batch, file=<JSONL>      -> FileObject
    POST {base}/batches                    {input_file_id, endpoint, completion_window, metadata} -> Batch
    GET  {base}/batches/{id}               -> Batch (status validating/in_progress/completed/expired/...)
    GET  {base}/batches?limit=&after=      -> list page (newest first)
    POST {base}/batches/{id}/cancel        -> Batch (cancelled)
    GET  {base}/files/{id}/content         -> the output / error JSONL

Input lines are ``{"custom_id", "method": "POST", "url": "/v1/responses", "body": {...}}``; each body is
answered by the live Responses format.  Successes go to ``output_file_id`` as
``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body"}, "error": null}``; failed
requests go to ``error_file_id`` (``status_code`` >= 400 with the error body), and requests the window
closed on carry ``error: {"code": "batch_expired" | "batch_cancelled"}`` and no response.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import BodyPartReader, web

from ..formats import openai_responses
from ..formats.base import Json, new_id
from .core import Job, SimState, StateOf, book, guarded, json_response, jsonl, new_job, newest_first, settle

FORMAT = openai_responses.FORMAT
ENDPOINT = "/v1/responses"  # the one endpoint the simulator batches (the project's wire format)
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> web.Response:
    return json_response(status, FORMAT.error(status, message, f"req_{new_id(12)}", param=param, code=code))


def _file_object(fid: str, name: str, size: int, purpose: str, created: float) -> Json:
    return {"id": fid, "object": "file", "bytes": size, "created_at": int(created), "filename": name,
            "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}


def _batch_object(job: Job, state: Any, bk: Any) -> Json:
    results = settle(job, state)
    phase = job.phase()
    status = {"in_progress": "in_progress", "ended": "completed", "expired": "expired",
              "cancelled": "cancelled"}[phase]
    done = job.done_count()
    failed = sum(1 for r in results if r.kind == "error") if results is not None else 0
    out: Json = {
        "id": job.id, "object": "batch", "endpoint": ENDPOINT, "errors": None,
        "input_file_id": job.labels["input_file_id"], "completion_window": "24h", "status": status,
        "output_file_id": None, "error_file_id": None, "created_at": int(job.created),
        "in_progress_at": int(job.created), "expires_at": int(job.created + 86400),
        "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
        "cancelling_at": None, "cancelled_at": None,
        "request_counts": {"total": job.total, "completed": done - failed, "failed": failed},
        "metadata": job.labels.get("metadata"),
        "model": job.model,
    }
    if results is not None:
        end = int(job.end_time())
        out["finalizing_at"] = end
        out[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = end
        ok = [r for r in results if r.kind == "ok"]
        bad = [r for r in results if r.kind != "ok"]
        if ok:
            out["output_file_id"] = _results_file(bk, job, "output", [_line(r) for r in ok])
        if bad:
            out["error_file_id"] = _results_file(bk, job, "error", [_line(r) for r in bad])
    return out


def _line(r: Any) -> Json:
    if r.kind in ("expired", "cancelled"):
        message = ("This request could not be executed before the completion window expired."
                   if r.kind == "expired" else "This request was not executed because the batch was cancelled.")
        return {"id": f"batch_req_{new_id(12)}", "custom_id": r.custom_id, "response": None,
                "error": {"code": f"batch_{r.kind}", "message": message}}
    return {"id": f"batch_req_{new_id(12)}", "custom_id": r.custom_id,
            "response": {"status_code": r.status, "request_id": r.request_id, "body": r.body}, "error": None}


def _results_file(bk: Any, job: Job, which: str, lines: list[Json]) -> str:
    fid = job.labels.get(f"{which}_file_id")
    if fid is None:
        fid = f"file-{new_id(12)}"
        bk.files[fid] = (f"batch_{job.id}_{which}.jsonl", jsonl(lines), "batch_output")
        bk.file_created[fid] = time.time()
        job.labels[f"{which}_file_id"] = fid
    return str(fid)


def register(app: web.Application, state_of: StateOf, root: str = "/openai/v1") -> None:
    """The Batch API's routes under the OpenAI base path."""
    guard = guarded(state_of, FORMAT)

    async def upload(request: web.Request, state: SimState) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/"):
            return _error(400, "Expected a multipart/form-data request.")
        purpose, name, data = "", "upload.jsonl", b""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "purpose":
                purpose = (await part.read()).decode()
            elif part.name == "file":
                name = part.filename or name
                data = bytes(await part.read())
        if purpose != "batch":
            return _error(400, "Invalid purpose: the simulator takes files with purpose 'batch'.", "purpose")
        if len(data) > MAX_FILE_BYTES:
            return _error(400, f"File is too large: the limit for batch files is {MAX_FILE_BYTES} bytes.", "file")
        fid = f"file-{new_id(12)}"
        bk = book(request)
        bk.files[fid] = (name, data, purpose)
        bk.file_created[fid] = time.time()
        return json_response(200, _file_object(fid, name, len(data), purpose, bk.file_created[fid]))

    async def content(request: web.Request, state: SimState) -> web.StreamResponse:
        entry = book(request).files.get(request.match_info["file_id"])
        if entry is None:
            return _error(404, f"No such File object: {request.match_info['file_id']}", "id")
        return web.Response(status=200, body=entry[1], content_type="application/octet-stream")

    async def create(request: web.Request, state: SimState) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if body.get("endpoint") != ENDPOINT:
            return _error(400, f"The simulator batches {ENDPOINT} only.", "endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'.", "completion_window")
        bk = book(request)
        entry = bk.files.get(str(body.get("input_file_id")))
        if entry is None:
            return _error(400, f"No such File object: {body.get('input_file_id')}", "input_file_id")
        requests: list[tuple[str, Json]] = []
        seen: set[str] = set()
        model: str | None = None
        for n, raw in enumerate(entry[1].splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                custom_id, url, req = line["custom_id"], line["url"], line["body"]
            except (ValueError, KeyError, TypeError):
                return _error(400, f"Line {n} of the input file is not a batch request.", "input_file_id")
            if url != ENDPOINT or line.get("method") != "POST":
                return _error(400, f"Line {n}: the url must be {ENDPOINT} and the method POST.", "input_file_id")
            if custom_id in seen:
                return _error(400, f"Line {n}: duplicate custom_id {custom_id!r}.", "input_file_id")
            seen.add(custom_id)
            if model is None and isinstance(req, dict):
                model = req.get("model")
            requests.append((str(custom_id), req))
        if not requests or len(requests) > MAX_REQUESTS:
            return _error(400, f"A batch holds 1 to {MAX_REQUESTS} requests.", "input_file_id")
        metadata = body.get("metadata")
        job = new_job(request, state, FORMAT.platform, FORMAT, None, requests, prefix="batch_",
                      labels={"input_file_id": body["input_file_id"], "metadata": metadata})
        job.model = model
        bk.add(job, state)
        delay = state.config.batch_create_delay_s
        if delay > 0:  # the batch exists; its creator waits for the answer (a crash lands here in tests)
            await asyncio.sleep(delay)
        return json_response(200, _batch_object(job, state, bk))

    async def retrieve(request: web.Request, state: SimState) -> web.StreamResponse:
        bk = book(request)
        job = bk.jobs.get(request.match_info["batch_id"])
        if job is None or job.platform != FORMAT.platform:
            return _error(404, f"No batch found with id '{request.match_info['batch_id']}'.")
        return json_response(200, _batch_object(job, state, bk))

    async def cancel(request: web.Request, state: SimState) -> web.StreamResponse:
        bk = book(request)
        job = bk.jobs.get(request.match_info["batch_id"])
        if job is None or job.platform != FORMAT.platform:
            return _error(404, f"No batch found with id '{request.match_info['batch_id']}'.")
        if job.phase() == "in_progress":
            job.cancelled_at = time.time()
        return json_response(200, _batch_object(job, state, bk))

    async def list_(request: web.Request, state: SimState) -> web.StreamResponse:
        bk = book(request)
        jobs = newest_first(request, FORMAT.platform, request.query.get("after"))
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
        page = jobs[:limit]
        data = [_batch_object(j, state, bk) for j in page]
        return json_response(200, {"object": "list", "data": data, "first_id": page[0].id if page else None,
                                   "last_id": page[-1].id if page else None, "has_more": len(jobs) > limit})

    app.router.add_post(f"{root}/files", guard(upload))
    app.router.add_get(f"{root}/files/{{file_id}}/content", guard(content))
    app.router.add_post(f"{root}/batches", guard(create))
    app.router.add_get(f"{root}/batches", guard(list_))
    app.router.add_get(f"{root}/batches/{{batch_id}}", guard(retrieve))
    app.router.add_post(f"{root}/batches/{{batch_id}}/cancel", guard(cancel))
