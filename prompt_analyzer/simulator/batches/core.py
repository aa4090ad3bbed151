"""What the three simulated batch APIs share: the jobs, their clock, and how one request is answered.

A job is answered by the same wire format that answers live calls (:mod:`..formats`): its request bodies
are parsed and its answers built by that format, so a batch answer is byte for byte the shape of a live
one.  Time is the simulator's own: a job is in progress for ``batch_processing_s`` seconds (the progress
counts grow evenly meanwhile), then ends; with ``batch_expire_after_s`` shorter than that it expires,
answering only the share it reached (as the providers return what finished before the 24-hour window).
Per-request failures come from the same fault markers and ``fault_rate`` as live calls.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from ..config import PlatformSim, SimulatorConfig
from ..content import make_answer, prompt_hash
from ..formats.base import BadRequest, Json, WireFormat, new_id

# Faults that fail one request of a batch, and the HTTP status its error line carries.  A dropped
# connection has no batch equivalent: the provider records a server error for the request.
_FAULT_STATUS = {"429": 429, "500": 500, "503": 503, "hang": 500, "reset": 500, "400": 400, "401": 401}


class SimState(Protocol):
    """The parts of the simulator's state a batch uses (``..server.SimState``)."""

    config: SimulatorConfig
    counts: dict[str, Counter[str]]
    answered: dict[str, dict[str, int]]

    def pick_fault(self, platform: str, prompt: str, ps: PlatformSim) -> str | None: ...


StateOf = Callable[[web.Request], SimState]
Handler = Callable[[web.Request, SimState], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Result:
    """One request's outcome: ``status`` 200 with the answer body, an error status with the provider's
    error body, or ``status`` 0 with ``kind`` ``expired`` / ``cancelled`` (never processed)."""

    custom_id: str
    status: int
    body: Json | None
    request_id: str
    kind: str = "ok"  # ok | error | expired | cancelled


@dataclass(slots=True)
class Job:
    id: str
    platform: str
    fmt: WireFormat
    model: str | None
    requests: list[tuple[str, Json]]  # (custom_id, request body)
    config: Callable[[], SimulatorConfig] = SimulatorConfig  # the simulator's config now (times apply to running jobs)
    created: float = field(default_factory=time.time)
    cancelled_at: float | None = None
    labels: dict[str, Any] = field(default_factory=dict)  # metadata / display name, as the API takes them
    origin: str | None = None  # the simulator's address as the creator reached it (links back to us)
    results: list[Result] | None = None

    @property
    def total(self) -> int:
        return len(self.requests)

    @property
    def processing_s(self) -> float:
        return self.config().batch_processing_s

    @property
    def expire_after_s(self) -> float | None:
        return self.config().batch_expire_after_s

    def phase(self, now: float | None = None) -> str:
        """``in_progress``, ``ended``, ``expired`` or ``cancelled`` at ``now``."""
        if self.results is not None:
            kinds = {r.kind for r in self.results}
            return "cancelled" if "cancelled" in kinds else "expired" if "expired" in kinds else "ended"
        now = time.time() if now is None else now
        if self.cancelled_at is not None:
            return "cancelled"
        elapsed = now - self.created
        if self.expire_after_s is not None and self.expire_after_s < self.processing_s:
            return "expired" if elapsed >= self.expire_after_s else "in_progress"
        return "ended" if elapsed >= self.processing_s else "in_progress"

    def done_count(self, now: float | None = None) -> int:
        """Requests processed so far (they grow evenly over the processing time)."""
        if self.results is not None:
            return sum(1 for r in self.results if r.kind in ("ok", "error"))
        now = time.time() if now is None else now
        if self.processing_s <= 0:
            return self.total
        share = min(1.0, (now - self.created) / self.processing_s)
        return min(self.total, int(self.total * share))

    def end_time(self) -> float:
        if self.cancelled_at is not None:
            return self.cancelled_at
        if self.expire_after_s is not None and self.expire_after_s < self.processing_s:
            return self.created + self.expire_after_s
        return self.created + self.processing_s


@dataclass
class Book:
    """Every batch job and uploaded file of one simulator app."""

    jobs: dict[str, Job] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # id -> (filename, bytes, purpose)
    file_created: dict[str, float] = field(default_factory=dict)

    def add(self, job: Job, state: SimState) -> Job:
        self.jobs[job.id] = job
        c = state.counts[job.platform]
        c["batch_creates"] += 1
        c["batch_requests"] += job.total
        return job


BOOK_KEY = web.AppKey("simulator_batches", Book)


def book(request: web.Request) -> Book:
    return request.app[BOOK_KEY]


def new_job(request: web.Request, state: SimState, platform: str, fmt: WireFormat, model: str | None,
            requests: list[tuple[str, Json]], *, prefix: str, labels: dict[str, Any]) -> Job:
    return Job(id=f"{prefix}{new_id(12)}", platform=platform, fmt=fmt, model=model, requests=requests,
               config=lambda: state.config, labels=labels, origin=f"{request.scheme}://{request.host}")


def settle(job: Job, state: SimState) -> list[Result] | None:
    """The job's results once it has ended (computed once); None while it is in progress."""
    if job.results is not None:
        return job.results
    phase = job.phase()
    if phase == "in_progress":
        return None
    reached = job.total if phase == "ended" else job.done_count(job.end_time())
    kind = "cancelled" if phase == "cancelled" else "expired"
    out: list[Result] = []
    for i, (custom_id, body) in enumerate(job.requests):
        if i < reached:
            out.append(answer(state, job, custom_id, body))
        else:
            out.append(Result(custom_id, 0, None, f"req_{new_id(12)}", kind=kind))
    job.results = out
    return out


def answer(state: SimState, job: Job, custom_id: str, body: Json) -> Result:
    """One request of a batch, answered as the live API would (faults included)."""
    fmt, platform = job.fmt, job.platform
    counts = state.counts[platform]
    rid = f"req_{new_id(12)}"
    try:
        call = fmt.parse(body, job.model)
        call.extra.setdefault("origin", job.origin)  # as a live answer's (Gemini's grounding links)
    except BadRequest as e:
        counts["400"] += 1
        return Result(custom_id, 400, fmt.error(400, e.message, rid, param=e.param), rid, kind="error")
    ps = state.config.platform(platform)
    fault = state.pick_fault(platform, call.prompt, ps)
    if fault is not None:
        counts[f"fault:{fault}"] += 1
        if fault in _FAULT_STATUS:
            status = _FAULT_STATUS[fault]
            if status >= 500:
                payload = fmt.server_error(status, rid)
            elif status == 429:
                payload = fmt.error(429, "Rate limit reached while processing the batch.", rid)
            else:
                payload = fmt.error(status, "Invalid request (injected by the simulator).", rid)
            return Result(custom_id, status, payload, rid, kind="error")
        if fault in ("failed", "malformed"):
            return Result(custom_id, 200, fmt.failed(call, rid), rid)
    ans = make_answer(call.prompt, platform, state.config.seed, state.config.answer_bytes)
    counts["ok"] += 1
    answered = state.answered[platform]
    h = prompt_hash(call.prompt)
    answered[h] = answered.get(h, 0) + 1
    return Result(custom_id, 200, fmt.success(call, ans, rid), rid)


def iso(ts: float | None) -> str | None:
    """An RFC 3339 instant with microseconds (Anthropic's, Gemini's spelling)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e6):06d}Z"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)


def jsonl(lines: list[Json]) -> bytes:
    return b"".join(json.dumps(x, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for x in lines)


def authorized(request: web.Request, state: SimState, fmt: WireFormat) -> web.Response | None:
    """The 401 the live API would answer for a missing or rejected key; None when the key is good."""
    ps = state.config.platform(fmt.platform)
    key = fmt.key(request.headers, request.query)
    rid = f"req_{new_id(12)}"
    if not key:
        return json_response(401, fmt.error(401, fmt.missing_key_message(), rid))
    if key in ps.invalid_keys or (ps.valid_keys is not None and key not in ps.valid_keys):
        return json_response(401, fmt.invalid_key(key, rid))
    return None


def guarded(state_of: StateOf, fmt: WireFormat) -> Callable[[Handler], Callable[[web.Request],
                                                                            Awaitable[web.StreamResponse]]]:
    """Route handlers of one API: the key checked as the live API checks it, then the handler."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = state_of(request)
            if (denied := authorized(request, state, fmt)) is not None:
                return denied
            return await handler(request, state)

        return handle

    return wrap


def newest_first(request: web.Request, platform: str, after: str | None) -> list[Job]:
    """A platform's jobs, newest first, after the job ``after`` (list pages)."""
    jobs = sorted((j for j in book(request).jobs.values() if j.platform == platform),
                  key=lambda j: j.created, reverse=True)
    if after:
        ids = [j.id for j in jobs]
        jobs = jobs[ids.index(after) + 1:] if after in ids else []
    return jobs

