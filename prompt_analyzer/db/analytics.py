"""The SQL of visibility analytics (issue 15): tracked brands, mentions, scoring records and the report's reads.

Explicit statements, typed rows (psycopg ``class_row`` on frozen dataclasses naming their columns).  What
the rows mean is :mod:`prompt_analyzer.analytics`' business; this module only moves them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

__all__ = [
    "AnalyticsStore", "AnswerRow", "BatchInfoRow", "BrandConflict", "BrandRow", "CitationRow", "MentionRow",
    "NewBrand", "ScoreAnswer", "ScoreRunRow",
]

# Scorers (the end of a run, `analyze score`) replace an answer's mention rows one page at a time under
# this transaction-level advisory lock, so two of them never interleave on the same rows.
_SCORE_LOCK = 0x6D656E74696F6E  # "mention"

_BRAND = sql.SQL("id, project_id, name, aliases, domains, is_own, match_case, created_at, updated_at")


class BrandConflict(ValueError):
    """A brand's name or alias is already another brand's in the same project (exit 2)."""


@dataclass(frozen=True, slots=True)
class NewBrand:
    project_id: uuid.UUID
    name: str
    aliases: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    is_own: bool = False
    match_case: bool = False


@dataclass(frozen=True, slots=True)
class BrandRow:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    aliases: list[str]
    domains: list[str]
    is_own: bool
    match_case: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ScoreAnswer:
    """A successful answer to score: its text, its sources and the fingerprint it was last scored with."""

    id: uuid.UUID
    project_id: uuid.UUID
    response_text: str | None
    sources: list[dict[str, Any]]  # [{"domain": ..., "cited": ...}]
    fingerprint: str | None  # None: never scored


@dataclass(frozen=True, slots=True)
class MentionRow:
    ai_response_id: uuid.UUID
    brand_id: uuid.UUID
    mention_count: int
    first_offset: int | None
    rank: int | None
    cited: bool
    retrieved: bool
    negated_count: int


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """A successful answer as the report counts it."""

    id: uuid.UUID
    batch_id: uuid.UUID
    project_id: uuid.UUID
    platform: str
    model_version: str | None
    searched: bool  # a web search ran (billed searches, grounding, or any source listed)
    fingerprint: str | None  # the brands fingerprint it was scored with; None: never scored


@dataclass(frozen=True, slots=True)
class CitationRow:
    ai_response_id: uuid.UUID
    domain: str
    site: str | None
    cited: bool


@dataclass(frozen=True, slots=True)
class BatchInfoRow:
    id: uuid.UUID
    idempotency_key: str | None
    trigger: str
    status: str
    started_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScoreRunRow:
    id: int
    trigger: str
    batch_id: uuid.UUID | None
    since: datetime | None
    started_at: datetime
    finished_at: datetime | None
    answers: int
    rescored: int
    changed: int
    changes: dict[str, Any]


_BATCH_INFO = sql.SQL("b.id, b.idempotency_key, b.trigger, b.status, b.started_at, b.completed_at")


class AnalyticsStore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    # ------------------------------------------------------------------------------------ brands

    async def _conflicts(self, conn: psycopg.AsyncConnection[Any], brands: Sequence[NewBrand]) -> None:
        """Raise BrandConflict when a new brand's name or alias is an existing brand's name or alias."""
        cur = conn.cursor(row_factory=class_row(BrandRow))
        projects = sorted({b.project_id for b in brands})
        await cur.execute(
            sql.SQL("SELECT {} FROM tracked_brands WHERE project_id = ANY(%s::uuid[])").format(_BRAND),
            (projects,),
        )
        taken: dict[tuple[uuid.UUID, str], str] = {}
        for row in await cur.fetchall():
            for term in (row.name, *row.aliases):
                taken[(row.project_id, term.casefold())] = row.name
        for b in brands:
            for term in (b.name, *b.aliases):
                owner = taken.get((b.project_id, term.casefold()))
                if owner is not None:
                    if owner.casefold() == term.casefold():
                        raise BrandConflict(f"brand {owner!r} already exists in project {b.project_id}")
                    raise BrandConflict(f"{term!r} is already a name or alias of brand {owner!r} "
                                        f"in project {b.project_id}")
            for term in (b.name, *b.aliases):
                taken[(b.project_id, term.casefold())] = b.name

    async def add_brands(self, brands: Sequence[NewBrand]) -> list[BrandRow]:
        """Insert brands, all or nothing (one transaction); BrandConflict if a name or alias is taken."""
        async with self.pool.connection() as conn, conn.transaction():
            # Serialise brand writers of these projects, so the conflict check sees every committed brand.
            for p in sorted({b.project_id for b in brands}):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"brands:{p}",))
            await self._conflicts(conn, brands)
            cur = conn.cursor(row_factory=class_row(BrandRow))
            out: list[BrandRow] = []
            for b in brands:
                await cur.execute(
                    sql.SQL("""INSERT INTO tracked_brands (project_id, name, aliases, domains, is_own, match_case)
                        VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}""").format(_BRAND),
                    (b.project_id, b.name, list(b.aliases), list(b.domains), b.is_own, b.match_case),
                )
                row = await cur.fetchone()
                assert row is not None
                out.append(row)
            return out

    async def update_brand(
        self, project_id: uuid.UUID, name: str, *, add_aliases: Sequence[str] = (), drop_aliases: Sequence[str] = (),
        add_domains: Sequence[str] = (), drop_domains: Sequence[str] = (), is_own: bool | None = None,
        match_case: bool | None = None,
    ) -> BrandRow | None:
        """Change a brand's aliases, domains or flags; None if the project has no brand of that name.
        BrandConflict if a new alias is another brand's name or alias."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"brands:{project_id}",))
            cur = conn.cursor(row_factory=class_row(BrandRow))
            await cur.execute(
                sql.SQL("""SELECT {} FROM tracked_brands WHERE project_id = %s AND lower(name) = lower(%s)
                           FOR UPDATE""").format(_BRAND),
                (project_id, name),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            drop_a = {a.casefold() for a in drop_aliases}
            aliases = [a for a in row.aliases if a.casefold() not in drop_a]
            new_aliases = [a for a in add_aliases if a.casefold() not in {x.casefold() for x in (row.name, *aliases)}]
            others = [b for b in await self._project_brands(conn, project_id) if b.id != row.id]
            for term in new_aliases:
                for b in others:
                    if term.casefold() in {t.casefold() for t in (b.name, *b.aliases)}:
                        raise BrandConflict(f"{term!r} is already a name or alias of brand {b.name!r} "
                                            f"in project {project_id}")
            domains = [d for d in row.domains if d not in set(drop_domains)]
            domains += [d for d in add_domains if d not in domains]
            await cur.execute(
                sql.SQL("""UPDATE tracked_brands SET aliases = %s, domains = %s, is_own = %s, match_case = %s,
                                  updated_at = now()
                           WHERE id = %s RETURNING {}""").format(_BRAND),
                (aliases + new_aliases, domains, row.is_own if is_own is None else is_own,
                 row.match_case if match_case is None else match_case, row.id),
            )
            return await cur.fetchone()

    async def _project_brands(self, conn: psycopg.AsyncConnection[Any], project_id: uuid.UUID) -> list[BrandRow]:
        cur = conn.cursor(row_factory=class_row(BrandRow))
        await cur.execute(sql.SQL("SELECT {} FROM tracked_brands WHERE project_id = %s").format(_BRAND),
                          (project_id,))
        return await cur.fetchall()

    async def list_brands(self, project_id: uuid.UUID | None = None) -> list[BrandRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(BrandRow)) as cur:
            await cur.execute(
                sql.SQL("""SELECT {} FROM tracked_brands
                    WHERE %(p)s::uuid IS NULL OR project_id = %(p)s
                    ORDER BY project_id, is_own DESC, lower(name)""").format(_BRAND),
                {"p": project_id},
            )
            return await cur.fetchall()

    async def remove_brand(self, project_id: uuid.UUID | None, ref: str) -> list[BrandRow]:
        """Delete the brand named ``ref`` (any case) or of id ``ref``; its mention rows go with it.
        Returns what was deleted: more than one row only when no project narrows a name."""
        try:
            brand_id: uuid.UUID | None = uuid.UUID(ref)
        except ValueError:
            brand_id = None
        async with self.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=class_row(BrandRow)) as cur:
            await cur.execute(
                sql.SQL("""SELECT {} FROM tracked_brands
                    WHERE (id = %(id)s OR lower(name) = lower(%(name)s))
                      AND (%(p)s::uuid IS NULL OR project_id = %(p)s)
                    FOR UPDATE""").format(_BRAND),
                {"id": brand_id, "name": ref, "p": project_id},
            )
            rows = await cur.fetchall()
            if len(rows) == 1:
                await conn.execute("DELETE FROM tracked_brands WHERE id = %s", (rows[0].id,))
            return rows

    # ------------------------------------------------------------------------------------ scoring

    async def answers_to_score(
        self, *, batch_id: uuid.UUID | None, since: datetime | None, after: uuid.UUID | None, limit: int,
        project_ids: Sequence[uuid.UUID] = (),
    ) -> list[ScoreAnswer]:
        """A keyset page of successful answers: of a batch, of batches started since a time, or all."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(ScoreAnswer)) as cur:
            await cur.execute(
                """SELECT r.id, r.project_id, r.response_text,
                          coalesce((SELECT json_agg(json_build_object('domain', c.domain, 'cited', c.cited))
                                    FROM ai_response_citations c WHERE c.ai_response_id = r.id), '[]') AS sources,
                          s.brands_fingerprint AS fingerprint
                   FROM ai_responses r
                   LEFT JOIN analysis_jobs j ON j.id = r.analysis_job_id
                   LEFT JOIN analysis_batches b ON b.id = j.batch_id
                   LEFT JOIN ai_response_scores s ON s.ai_response_id = r.id
                   WHERE r.status = 'success' AND r.id > %(after)s
                     AND (%(batch)s::uuid IS NULL OR j.batch_id = %(batch)s)
                     AND (%(since)s::timestamptz IS NULL OR coalesce(b.started_at, r.created_at) >= %(since)s)
                     AND (cardinality(%(projects)s::uuid[]) = 0 OR r.project_id = ANY(%(projects)s::uuid[]))
                   ORDER BY r.id LIMIT %(n)s""",
                {"after": after or uuid.UUID(int=0), "batch": batch_id, "since": since, "n": limit,
                 "projects": list(project_ids)},
            )
            return await cur.fetchall()

    async def start_score_run(
        self, *, trigger: str, batch_id: uuid.UUID | None, since: datetime | None, brands: dict[str, Any]
    ) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """INSERT INTO mention_score_runs (trigger, batch_id, since, brands)
                   VALUES (%s, %s, %s, %s::jsonb) RETURNING id""",
                (trigger, batch_id, since, json.dumps(brands)),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row["id"])

    async def finish_score_run(
        self, run_id: int, *, answers: int, rescored: int, changed: int, changes: dict[str, Any]
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE mention_score_runs SET finished_at = now(), answers = %s, rescored = %s, changed = %s,
                          changes = %s::jsonb WHERE id = %s""",
                (answers, rescored, changed, json.dumps(changes), run_id),
            )

    async def replace_mentions(
        self, answers: Sequence[tuple[uuid.UUID, str]], mentions: Sequence[MentionRow]
    ) -> list[MentionRow]:
        """Make the mention rows of ``answers`` (id, fingerprint) be ``mentions``, in one transaction, and
        record the fingerprints; returns the rows they had before (to say what changed).  Only answers whose
        rows differ are rewritten: a rescore that changes nothing writes no mention row."""
        ids = [a for a, _ in answers]
        new: dict[uuid.UUID, set[MentionRow]] = {}
        for m in mentions:
            new.setdefault(m.ai_response_id, set()).add(m)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCORE_LOCK,))
            cur = conn.cursor(row_factory=class_row(MentionRow))
            await cur.execute(
                """SELECT ai_response_id, brand_id, mention_count, first_offset, rank, cited, retrieved, negated_count
                   FROM ai_response_mentions WHERE ai_response_id = ANY(%s::uuid[])""",
                (ids,),
            )
            before = await cur.fetchall()
            old: dict[uuid.UUID, set[MentionRow]] = {}
            for m in before:
                old.setdefault(m.ai_response_id, set()).add(m)
            changed = [a for a in ids if old.get(a, set()) != new.get(a, set())]
            rows = [m for a in changed for m in new.get(a, ())]
            if changed:
                await conn.execute("DELETE FROM ai_response_mentions WHERE ai_response_id = ANY(%s::uuid[])",
                                   (changed,))
            if rows:
                await conn.execute(
                    """INSERT INTO ai_response_mentions (ai_response_id, brand_id, mention_count, first_offset, rank,
                                                         cited, retrieved, negated_count)
                       SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::int[], %s::int[], %s::int[], %s::bool[],
                                            %s::bool[], %s::int[])""",
                    ([m.ai_response_id for m in rows], [m.brand_id for m in rows], [m.mention_count for m in rows],
                     [m.first_offset for m in rows], [m.rank for m in rows], [m.cited for m in rows],
                     [m.retrieved for m in rows], [m.negated_count for m in rows]),
                )
            await conn.execute(
                """INSERT INTO ai_response_scores (ai_response_id, brands_fingerprint)
                   SELECT * FROM unnest(%s::uuid[], %s::text[])
                   ON CONFLICT (ai_response_id) DO UPDATE SET brands_fingerprint = EXCLUDED.brands_fingerprint,
                                                              scored_at = now()""",
                (ids, [f for _, f in answers]),
            )
            return before

    async def score_runs(self, limit: int = 20) -> list[ScoreRunRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(ScoreRunRow)) as cur:
            await cur.execute(
                """SELECT id, trigger, batch_id, since, started_at, finished_at, answers, rescored, changed, changes
                   FROM mention_score_runs ORDER BY id DESC LIMIT %s""",
                (limit,),
            )
            return await cur.fetchall()

    # ------------------------------------------------------------------------------------ report reads

    async def batch_info(self, batch_id: uuid.UUID) -> BatchInfoRow | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(BatchInfoRow)) as cur:
            await cur.execute(sql.SQL("SELECT {} FROM analysis_batches b WHERE b.id = %s").format(_BATCH_INFO),
                              (batch_id,))
            return await cur.fetchone()

    async def batches_with_answers(
        self, *, project_id: uuid.UUID | None, since: datetime | None = None, until: datetime | None = None,
        limit: int | None = None,
    ) -> list[BatchInfoRow]:
        """Batches holding successful answers (of the project, if given), newest first; batches of
        ``analyze prompt`` (one prompt, trigger 'prompt') are no point of a trend and are left out."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(BatchInfoRow)) as cur:
            await cur.execute(
                sql.SQL("""SELECT {} FROM analysis_batches b
                    WHERE b.trigger <> 'prompt'
                      AND (%(since)s::timestamptz IS NULL OR b.started_at >= %(since)s)
                      AND (%(until)s::timestamptz IS NULL OR b.started_at <= %(until)s)
                      AND EXISTS (SELECT 1 FROM analysis_jobs j JOIN ai_responses r ON r.analysis_job_id = j.id
                                  WHERE j.batch_id = b.id AND r.status = 'success'
                                    AND (%(p)s::uuid IS NULL OR j.project_id = %(p)s))
                    ORDER BY b.started_at DESC, b.id DESC LIMIT %(n)s""").format(_BATCH_INFO),
                {"p": project_id, "since": since, "until": until, "n": limit},
            )
            return await cur.fetchall()

    async def answers(self, batch_ids: Sequence[uuid.UUID], project_id: uuid.UUID | None) -> list[AnswerRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(AnswerRow)) as cur:
            await cur.execute(
                """SELECT r.id, j.batch_id, r.project_id, r.platform, r.model_version,
                          (CASE WHEN jsonb_typeof(r.metadata -> 'searches') = 'number'
                                THEN (r.metadata ->> 'searches')::numeric > 0 ELSE false END
                           OR coalesce(r.metadata ->> 'grounded', '') = 'true'
                           OR EXISTS (SELECT 1 FROM ai_response_citations c WHERE c.ai_response_id = r.id))
                              AS searched,
                          s.brands_fingerprint AS fingerprint
                   FROM analysis_jobs j
                   JOIN ai_responses r ON r.analysis_job_id = j.id
                   LEFT JOIN ai_response_scores s ON s.ai_response_id = r.id
                   WHERE j.batch_id = ANY(%(b)s::uuid[]) AND r.status = 'success'
                     AND (%(p)s::uuid IS NULL OR r.project_id = %(p)s)""",
                {"b": list(batch_ids), "p": project_id},
            )
            return await cur.fetchall()

    async def mentions(self, batch_ids: Sequence[uuid.UUID], project_id: uuid.UUID | None) -> list[MentionRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(MentionRow)) as cur:
            await cur.execute(
                """SELECT m.ai_response_id, m.brand_id, m.mention_count, m.first_offset, m.rank, m.cited,
                          m.retrieved, m.negated_count
                   FROM analysis_jobs j
                   JOIN ai_responses r ON r.analysis_job_id = j.id
                   JOIN ai_response_mentions m ON m.ai_response_id = r.id
                   WHERE j.batch_id = ANY(%(b)s::uuid[]) AND r.status = 'success'
                     AND (%(p)s::uuid IS NULL OR r.project_id = %(p)s)""",
                {"b": list(batch_ids), "p": project_id},
            )
            return await cur.fetchall()

    async def citations(self, batch_ids: Sequence[uuid.UUID], project_id: uuid.UUID | None) -> list[CitationRow]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(CitationRow)) as cur:
            await cur.execute(
                """SELECT c.ai_response_id, c.domain, c.site, c.cited
                   FROM analysis_jobs j
                   JOIN ai_responses r ON r.analysis_job_id = j.id
                   JOIN ai_response_citations c ON c.ai_response_id = r.id
                   WHERE j.batch_id = ANY(%(b)s::uuid[]) AND r.status = 'success'
                     AND (%(p)s::uuid IS NULL OR r.project_id = %(p)s)""",
                {"b": list(batch_ids), "p": project_id},
            )
            return await cur.fetchall()
