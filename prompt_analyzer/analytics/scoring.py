"""Scoring: the mentions of stored answers, computed from their text and sources alone (no API call).

Every scored answer records the *fingerprint* of the brand definitions it was scored with (the project's
brands' ids, names, aliases, domains and match_case, and :data:`~.mentions.MATCHER_VERSION`).  When a
brand changes, its project's fingerprint changes; answers scored before are then *stale*, and scoring
them again is a *rescore*.  Every scoring writes a ``mention_score_runs`` row naming the brand
definitions it used and what changed (per brand: answers that newly mention it, answers that no longer
do), so a figure of history can always be traced and reproduced.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ..db.analytics import AnalyticsStore, BrandRow, MentionRow
from .mentions import MATCHER_VERSION, BrandTerms, Matcher, Source

__all__ = ["BrandChange", "ProjectBrands", "ScoreResult", "fingerprint", "load_project_brands", "score",
           "score_after_run"]

log = logging.getLogger("prompt_analyzer.analytics")

PAGE = 500  # answers per transaction


def fingerprint(brands: Sequence[BrandRow]) -> str:
    """What decides an answer's mentions: the matcher's version and every brand's terms (not is_own)."""
    canon = [[str(b.id), b.name, sorted(b.aliases), sorted(b.domains), b.match_case]
             for b in sorted(brands, key=lambda b: str(b.id))]
    blob = json.dumps([MATCHER_VERSION, canon], ensure_ascii=False, separators=(",", ":"))
    return f"v{MATCHER_VERSION}:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ProjectBrands:
    project_id: uuid.UUID
    brands: tuple[BrandRow, ...]
    fingerprint: str
    matcher: Matcher

    @classmethod
    def of(cls, project_id: uuid.UUID, brands: Sequence[BrandRow]) -> ProjectBrands:
        ordered = tuple(sorted(brands, key=lambda b: (not b.is_own, b.name.casefold())))
        terms = [BrandTerms(b.id, b.name, tuple(b.aliases), tuple(b.domains), b.match_case) for b in ordered]
        return cls(project_id, ordered, fingerprint(ordered), Matcher(terms))

    def snapshot(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint,
                "brands": [{"id": str(b.id), "name": b.name, "aliases": b.aliases, "domains": b.domains,
                            "is_own": b.is_own, "match_case": b.match_case} for b in self.brands]}


async def load_project_brands(store: AnalyticsStore) -> dict[uuid.UUID, ProjectBrands]:
    by_project: dict[uuid.UUID, list[BrandRow]] = {}
    for b in await store.list_brands():
        by_project.setdefault(b.project_id, []).append(b)
    return {p: ProjectBrands.of(p, bs) for p, bs in by_project.items()}


@dataclass(slots=True)
class BrandChange:
    gained: int = 0  # answers that mention the brand now and did not before
    lost: int = 0  # answers that mentioned it before and do not now


@dataclass(slots=True)
class ScoreResult:
    run_id: int
    answers: int = 0  # answers scored
    first_time: int = 0  # of which never scored before
    rescored: int = 0  # of which scored before with other brand definitions (aliases changed)
    changed: int = 0  # answers whose mention rows changed
    mentions: int = 0  # (answer, brand) pairs mentioned after scoring
    brands: dict[str, BrandChange] = field(default_factory=dict)  # by brand name

    def changes_json(self) -> dict[str, Any]:
        return {name: {"gained": c.gained, "lost": c.lost} for name, c in sorted(self.brands.items())
                if c.gained or c.lost}


async def score(
    pool: AsyncConnectionPool[Any], *, batch_id: uuid.UUID | None = None, since: datetime | None = None,
    trigger: str = "score", project_ids: Sequence[uuid.UUID] = (),
) -> ScoreResult:
    """Score the successful answers of a batch, of the batches started since ``since``, or all of them,
    with the brands as they are now; record the run and what changed."""
    store = AnalyticsStore(pool)
    projects: dict[uuid.UUID, ProjectBrands] = await load_project_brands(store)
    run_id = await store.start_score_run(
        trigger=trigger, batch_id=batch_id, since=since,
        brands={str(p): pb.snapshot() for p, pb in projects.items()},
    )
    result = ScoreResult(run_id)
    names = {b.id: b.name for pb in projects.values() for b in pb.brands}
    after: uuid.UUID | None = None
    while True:
        page = await store.answers_to_score(batch_id=batch_id, since=since, after=after, limit=PAGE,
                                            project_ids=project_ids)
        if not page:
            break
        after = page[-1].id
        stamped: list[tuple[uuid.UUID, str]] = []
        rows: list[MentionRow] = []
        for a in page:
            pb = projects.get(a.project_id)
            if pb is None:  # a project without brands: scored all the same (its fingerprint says "none")
                pb = projects[a.project_id] = ProjectBrands.of(a.project_id, ())
            if a.fingerprint is None:
                result.first_time += 1
            elif a.fingerprint != pb.fingerprint:
                result.rescored += 1
            stamped.append((a.id, pb.fingerprint))
            sources = [Source(str(s.get("domain") or ""), bool(s.get("cited"))) for s in a.sources]
            for m in pb.matcher.mentions(a.response_text, sources):
                rows.append(MentionRow(a.id, m.brand_id, m.mention_count, m.first_offset, m.rank, m.cited,
                                       m.retrieved, m.negated_count))
        before = await store.replace_mentions(stamped, rows)
        _compare(result, before, rows, names)
        result.answers += len(page)
        result.mentions += sum(1 for r in rows if r.mention_count > 0)
        if len(page) < PAGE:
            break
    await store.finish_score_run(run_id, answers=result.answers, rescored=result.rescored,
                                 changed=result.changed, changes=result.changes_json())
    return result


def _compare(result: ScoreResult, before: Sequence[MentionRow], after: Sequence[MentionRow],
             names: Mapping[uuid.UUID, str]) -> None:
    def by_answer(rows: Sequence[MentionRow]) -> dict[uuid.UUID, set[MentionRow]]:
        out: dict[uuid.UUID, set[MentionRow]] = {}
        for r in rows:
            out.setdefault(r.ai_response_id, set()).add(r)
        return out

    old, new = by_answer(before), by_answer(after)
    for answer in old.keys() | new.keys():
        o, n = old.get(answer, set()), new.get(answer, set())
        if o == n:
            continue
        result.changed += 1
        was = {r.brand_id for r in o if r.mention_count > 0}
        now = {r.brand_id for r in n if r.mention_count > 0}
        for b in now - was:
            result.brands.setdefault(names.get(b, str(b)), BrandChange()).gained += 1
        for b in was - now:
            # A brand removed since: its rows went with it (cascade), so it never shows up here.
            result.brands.setdefault(names.get(b, str(b)), BrandChange()).lost += 1


async def score_after_run(pool: AsyncConnectionPool[Any], batch_id: uuid.UUID) -> ScoreResult | None:
    """The end of every run: score the batch's answers.  Never fails the run: a failure is logged with
    the command that scores the batch later (`analyze score --batch ID`)."""
    try:
        result = await score(pool, batch_id=batch_id, trigger="run")
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.warning("mentions of batch %s not scored (%s: %s); `analyze score --batch %s` scores them",
                    batch_id, type(e).__name__, str(e).splitlines()[0] if str(e) else "", batch_id,
                    extra={"event": "score_failed", "batch": str(batch_id)})
        return None
    log.info("scored %d answer(s) of batch %s: %d brand mention(s)", result.answers, batch_id, result.mentions,
             extra={"event": "scored", "batch": str(batch_id)})
    return result
