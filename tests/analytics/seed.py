"""Seeding batches of answers straight into the contract's tables, for metric and scoring tests.

Rows are written with plain INSERTs (no provider, no engine): the tests check what the analytics compute
from stored rows, and the numbers they expect are worked out by hand from what is seeded here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prompt_analyzer.db import Store


@dataclass
class Cite:
    url: str
    domain: str
    site: str
    cited: bool = True


@dataclass
class Ans:
    platform: str
    text: str
    cites: list[Cite] = field(default_factory=list)
    model: str | None = None
    status: str = "success"
    metadata: dict[str, Any] = field(default_factory=dict)


async def seed_batch(store: Store, project: uuid.UUID, key: str, started: datetime, answers: list[Ans],
                     *, trigger: str = "schedule") -> tuple[uuid.UUID, list[uuid.UUID]]:
    """One batch: one prompt (and job) per answer.  Returns the batch id and the answers' ids in order."""
    import json

    async with store.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            """INSERT INTO analysis_batches (idempotency_key, trigger, status, started_at, completed_at)
               VALUES (%s, %s, 'completed', %s, %s) RETURNING id""",
            (key, trigger, started, started),
        )
        row = await cur.fetchone()
        assert row is not None
        batch = row["id"]
        ids: list[uuid.UUID] = []
        for i, a in enumerate(answers):
            cur = await conn.execute(
                "INSERT INTO prompt_tracking (project_id, prompt_text) VALUES (%s, %s) RETURNING id",
                (project, f"{key} prompt {i}"),
            )
            prow = await cur.fetchone()
            assert prow is not None
            cur = await conn.execute(
                """INSERT INTO analysis_jobs (batch_id, project_id, prompt_tracking_id, status, total_platforms,
                                              platforms)
                   VALUES (%s, %s, %s, 'completed', 1, %s) RETURNING id""",
                (batch, project, prow["id"], [a.platform]),
            )
            jrow = await cur.fetchone()
            assert jrow is not None
            cur = await conn.execute(
                """INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform, model_version,
                                            prompt_text, response_text, status, metadata)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id""",
                (jrow["id"], prow["id"], project, a.platform, a.model, f"{key} prompt {i}", a.text, a.status,
                 json.dumps(a.metadata)),
            )
            rrow = await cur.fetchone()
            assert rrow is not None
            ids.append(rrow["id"])
            for pos, c in enumerate(a.cites, start=1):
                await conn.execute(
                    """INSERT INTO ai_response_citations (ai_response_id, position, url, domain, title, cited, site)
                       VALUES (%s, %s, %s, %s, NULL, %s, %s)""",
                    (rrow["id"], pos, c.url, c.domain, c.cited, c.site),
                )
        return batch, ids
