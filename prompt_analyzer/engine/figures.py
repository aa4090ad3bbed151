"""The typed figures of a batch: what ``status --json`` and ``run --json`` print, what the terminal
summary renders, what the metrics file and the webhook carry.  One shape for all of them.

``TypedDict`` on purpose: the report *is* a JSON document (the contract fixes some of its keys), so it
stays a plain dict at run time, and mypy checks every producer and reader.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# "class" is a Python keyword, hence the functional syntax.
TopErrorEntry = TypedDict("TopErrorEntry", {"class": str | None, "message": str | None, "count": int})


class RunFigures(TypedDict):
    """What this process saw (present when the report follows a run)."""

    calls: int
    rate_limited: int
    retries: int
    circuit_open: str | None


class PlatformFigures(TypedDict):
    total: int
    success: int
    error: int
    processing: int
    pending: int
    tokens: int
    cost_usd: float
    p50_ms: float | None
    p95_ms: float | None
    attempts: int
    top_errors: list[TopErrorEntry]
    run: NotRequired[RunFigures]
    limits: NotRequired[dict[str, Any]]  # the limits in force when the batch last ran (engine/limits.py)


class BatchReport(TypedDict):
    batch_id: str
    key: str | None
    trigger: str
    status: str
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    started_at: str | None
    completed_at: str | None
    cost_usd: float
    platforms: dict[str, PlatformFigures]
    duration_s: NotRequired[float]
    interrupted_by: NotRequired[str]
