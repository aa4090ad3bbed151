"""The headline figures of a batch, per project, for the `analyze run --notify-url` webhook.

A receiver (Slack relay, dashboard, on-call bot) wants the one number it can post without running
`analyze report`: each project's own brand(s) visibility with its interval, share of voice and average
rank, and whether they changed beyond noise since the previous batch.  Same definitions and same code as
the report (:func:`.metrics.compute_report`), reduced to what a message shows.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ..db import Store
from .metrics import NoBatch, Report, compute_report

__all__ = ["headline", "headline_of"]


def headline_of(report: Report) -> dict[str, Any]:
    """``{project id: {"answers", "brands": {own brand: figures}}}`` (own brands only; a project without
    one lists nothing under ``brands``); figures rounded as in ``analyze report --json``."""
    out: dict[str, Any] = {}
    for pid, pm in report.projects.items():
        brands: dict[str, Any] = {}
        for b in pm.own:
            j = b.to_json()
            brands[b.name] = {
                "visibility": j["visibility"], "visibility_ci": j["visibility_ci"],
                "share_of_voice": j["share_of_voice"], "avg_rank": j["avg_rank"],
                "citation_share": j["citation_share"], "mentions": b.mentions,
                "flagged_changes": {m: c for m, c in j["changes"].items() if c["flagged"]},
            }
        out[str(pid)] = {"answers": pm.answers, "brands": brands,
                         "unscored_answers": pm.unscored_answers + pm.stale_answers}
    return out


async def headline(source: Store | AsyncConnectionPool[Any], batch_id: uuid.UUID) -> dict[str, Any] | None:
    """:func:`headline_of` the batch's report; None when the batch holds no successful answer."""
    try:
        report = await compute_report(source, batch=batch_id)
    except NoBatch:
        return None
    return {"batch_id": str(report.batch_id), "comparable": not report.marks, "marks": list(report.marks),
            "projects": headline_of(report)}
