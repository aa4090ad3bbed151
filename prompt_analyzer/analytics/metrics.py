"""Visibility metrics per project, brand, platform and batch, with 95% Wilson intervals and change flags.

The API the report renders (``analyze report`` in terminal tables, JSON, CSV and HTML):

    report = await compute_report(pool, project=None, batch=None, since=None)
    report.to_json()   # the contract's `analyze report --json` object

Every figure is computed from stored rows: mentions from ``ai_response_mentions`` (as last scored),
citations from ``ai_response_citations`` with the brands' current domains.  docs/metrics.md defines each
one with its formula; :mod:`.stats` has the interval and the test.

Selection: one batch (``batch``), every batch started since a time (``since``, figures pooled over their
answers), or by default the last batch with answers.  Changes compare the last selected batch with the
batch before it; the trend is the last ``trend_batches`` batches up to the last selected one.  Batches of
``analyze prompt`` (a single prompt) are never a point of comparison.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ..db import Store
from ..db.analytics import AnalyticsStore, AnswerRow, BatchInfoRow, BrandRow, CitationRow, MentionRow
from ..engine.service import NotFound
from .mentions import domain_matches, is_redirect_host
from .scoring import ProjectBrands, load_project_brands
from .stats import two_proportion_test, wilson

__all__ = [
    "BatchSummary", "BrandMetrics", "Change", "CitationGap", "DomainStat", "Figures", "Interval", "NoBatch",
    "PlatformMetrics", "PlatformServed", "ProjectMetrics", "Report", "Trend", "TrendPoint", "TrendValue",
    "compute_report",
]

TREND_BATCHES = 10
TOP_DOMAINS = 10
CHANGE_METRICS = ("visibility", "share_of_voice", "citation_share")


class NoBatch(NotFound):
    """Nothing to report: no such batch, or no batch (of the project) holds a successful answer (exit 2)."""


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _ratio(x: int, n: int) -> float | None:
    return x / n if n else None


@dataclass(frozen=True, slots=True)
class Interval:
    """A 95% Wilson score interval."""

    low: float
    high: float

    @classmethod
    def wilson(cls, successes: int, n: int) -> Interval | None:
        bounds = wilson(successes, n)
        return None if bounds is None else cls(*bounds)

    def to_json(self) -> list[float]:
        return [round(self.low, 4), round(self.high, 4)]


def _ci(i: Interval | None) -> list[float] | None:
    return None if i is None else i.to_json()


@dataclass(frozen=True, slots=True)
class Change:
    """One metric of a brand between the previous batch and the last selected one."""

    metric: str  # "visibility" | "share_of_voice" | "citation_share"
    before: float
    after: float
    p_value: float
    method: str  # "z" (pooled two-proportion z-test) or "fisher" (exact, small counts)
    significant: bool  # p < 0.05: unlikely to be noise
    comparable: bool  # False: the two batches differ in served model or search behaviour (see marks)

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def flagged(self) -> bool:
        """Worth a headline: significant between batches that asked the same thing the same way."""
        return self.significant and self.comparable

    def to_json(self) -> dict[str, Any]:
        return {"before": _r(self.before), "after": _r(self.after), "delta": _r(self.delta),
                "p_value": round(self.p_value, 6), "method": self.method, "significant": self.significant,
                "comparable": self.comparable, "flagged": self.flagged}


@dataclass(frozen=True, slots=True)
class _Counts:
    """The counts behind one brand's metrics in one scope (all platforms, or one)."""

    answers: int = 0  # successful answers
    mentioned: int = 0  # answers mentioning the brand
    mention_total: int = 0  # answers mentioning any tracked brand, summed over brands (SoV denominator)
    occurrences: int = 0  # counted occurrences of the brand, over all answers
    rank_sum: int = 0
    ranked: int = 0
    cited_sources: int = 0  # cited sources on the brand's domains
    all_cited: int = 0  # all cited sources
    cited_answers: int = 0  # answers citing the brand's domains
    retrieved_answers: int = 0  # answers that retrieved but did not cite the brand's domains


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one brand in one scope (every platform, or one): what PlatformMetrics and BrandMetrics
    share."""

    answers: int  # successful answers in the scope
    mentions: int  # answers mentioning the brand
    visibility: float | None
    visibility_ci: Interval | None
    share_of_voice: float | None
    share_of_voice_ci: Interval | None
    avg_rank: float | None
    citation_share: float | None
    citation_share_ci: Interval | None
    cited_sources: int
    cited_answers: int
    retrieved_answers: int

    @staticmethod
    def of_counts(c: _Counts) -> dict[str, Any]:
        """The keyword arguments of these fields, from a scope's counts."""
        return {
            "answers": c.answers, "mentions": c.mentioned,
            "visibility": _ratio(c.mentioned, c.answers), "visibility_ci": Interval.wilson(c.mentioned, c.answers),
            "share_of_voice": _ratio(c.mentioned, c.mention_total),
            "share_of_voice_ci": Interval.wilson(c.mentioned, c.mention_total),
            "avg_rank": _ratio(c.rank_sum, c.ranked),
            "citation_share": _ratio(c.cited_sources, c.all_cited),
            "citation_share_ci": Interval.wilson(c.cited_sources, c.all_cited),
            "cited_sources": c.cited_sources, "cited_answers": c.cited_answers,
            "retrieved_answers": c.retrieved_answers,
        }

    def figures_json(self) -> dict[str, Any]:
        return {
            "answers": self.answers, "mentions": self.mentions,
            "visibility": _r(self.visibility), "visibility_ci": _ci(self.visibility_ci),
            "share_of_voice": _r(self.share_of_voice), "share_of_voice_ci": _ci(self.share_of_voice_ci),
            "avg_rank": _r(self.avg_rank),
            "citation_share": _r(self.citation_share), "citation_share_ci": _ci(self.citation_share_ci),
            "cited_sources": self.cited_sources, "cited_answers": self.cited_answers,
            "retrieved_answers": self.retrieved_answers,
        }


@dataclass(frozen=True, slots=True)
class PlatformMetrics(Figures):
    """One brand on one platform."""

    platform: str
    changes: Mapping[str, Change] = field(default_factory=dict)

    @classmethod
    def of(cls, platform: str, c: _Counts, changes: Mapping[str, Change] | None = None) -> PlatformMetrics:
        return cls(platform=platform, changes=changes or {}, **Figures.of_counts(c))

    def to_json(self) -> dict[str, Any]:
        return {**self.figures_json(), "changes": {k: v.to_json() for k, v in self.changes.items()}}


@dataclass(frozen=True, slots=True)
class BrandMetrics(Figures):
    """One tracked brand over every platform of the selection, and per platform."""

    brand_id: uuid.UUID
    name: str
    own: bool
    occurrences: int  # counted occurrences in all answers
    platforms: Mapping[str, PlatformMetrics]
    changes: Mapping[str, Change] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.brand_id), "own": self.own, **self.figures_json(), "occurrences": self.occurrences,
            "changes": {k: v.to_json() for k, v in self.changes.items()},
            "platforms": {p: m.to_json() for p, m in self.platforms.items()},
        }


@dataclass(frozen=True, slots=True)
class DomainStat:
    """A cited site (registrable domain): how often the selection's answers cite it."""

    domain: str
    citations: int  # cited sources on it
    answers: int  # answers citing it
    share: float  # citations / all cited sources
    brand: str | None  # the tracked brand whose domains it is on

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "citations": self.citations, "answers": self.answers,
                "share": round(self.share, 4), "brand": self.brand}


@dataclass(frozen=True, slots=True)
class CitationGap:
    """A site cited in answers that mention a competitor, and in none that mention the own brand."""

    domain: str
    answers: int  # answers mentioning a competitor that cite it
    citations: int  # cited sources on it in those answers
    competitors: tuple[str, ...]  # the competitors those answers mention

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "answers": self.answers, "citations": self.citations,
                "competitors": list(self.competitors)}


@dataclass(frozen=True, slots=True)
class PlatformServed:
    """What a platform served in a batch: the models it reported and how often a web search ran."""

    platform: str
    answers: int
    models: tuple[str, ...]
    searched: int  # answers for which a search ran

    @property
    def search_rate(self) -> float | None:
        return _ratio(self.searched, self.answers)

    def to_json(self) -> dict[str, Any]:
        return {"answers": self.answers, "models": list(self.models), "searched": self.searched,
                "search_rate": _r(self.search_rate)}


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """A batch of the selection or of the trend, with how it differs from the batch before it."""

    batch_id: uuid.UUID
    key: str | None
    trigger: str
    status: str
    started_at: datetime
    answers: int
    served: Mapping[str, PlatformServed]
    marks: tuple[str, ...] = ()  # differences from the previous batch in served model or search behaviour

    @property
    def comparable(self) -> bool:
        return not self.marks

    def to_json(self) -> dict[str, Any]:
        return {"batch_id": str(self.batch_id), "key": self.key, "trigger": self.trigger, "status": self.status,
                "started_at": self.started_at.isoformat(), "answers": self.answers,
                "served": {p: s.to_json() for p, s in self.served.items()},
                "marks": list(self.marks), "comparable": self.comparable}


@dataclass(frozen=True, slots=True)
class TrendValue:
    visibility: float | None
    visibility_ci: Interval | None
    share_of_voice: float | None
    avg_rank: float | None
    citation_share: float | None

    def to_json(self) -> dict[str, Any]:
        return {"visibility": _r(self.visibility), "visibility_ci": _ci(self.visibility_ci),
                "share_of_voice": _r(self.share_of_voice), "avg_rank": _r(self.avg_rank),
                "citation_share": _r(self.citation_share)}


@dataclass(frozen=True, slots=True)
class TrendPoint:
    batch_id: uuid.UUID
    started_at: datetime
    answers: int
    marks: tuple[str, ...]  # how this batch differs from the one before it (empty: comparable)
    brands: Mapping[str, TrendValue]

    def to_json(self) -> dict[str, Any]:
        return {"batch_id": str(self.batch_id), "started_at": self.started_at.isoformat(),
                "answers": self.answers, "marks": list(self.marks), "comparable": not self.marks,
                "brands": {n: v.to_json() for n, v in self.brands.items()}}


@dataclass(frozen=True, slots=True)
class Trend:
    points: tuple[TrendPoint, ...]  # oldest first

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.points]


@dataclass(frozen=True, slots=True)
class ProjectMetrics:
    project_id: uuid.UUID
    answers: int  # successful answers of the selection
    cited_sources: int  # all cited sources of those answers (the redirect host excepted)
    platforms: Mapping[str, int]  # successful answers per platform
    brands: Mapping[str, BrandMetrics]  # by name: the own brand(s) first, then by visibility
    top_domains: tuple[DomainStat, ...]
    citation_gaps: tuple[CitationGap, ...]
    trend: Trend
    unscored_answers: int  # answers never scored (run `analyze score`)
    stale_answers: int  # answers scored with other brand definitions than the current ones

    @property
    def own(self) -> tuple[BrandMetrics, ...]:
        return tuple(b for b in self.brands.values() if b.own)

    def to_json(self) -> dict[str, Any]:
        return {
            "answers": self.answers, "cited_sources": self.cited_sources, "platforms": dict(self.platforms),
            "brands": {n: b.to_json() for n, b in self.brands.items()},
            "top_domains": [d.to_json() for d in self.top_domains],
            "citation_gaps": [g.to_json() for g in self.citation_gaps],
            "trend": self.trend.to_json(),
            "unscored_answers": self.unscored_answers, "stale_answers": self.stale_answers,
        }


@dataclass(frozen=True, slots=True)
class Report:
    batch_id: uuid.UUID  # the last selected batch
    batches: tuple[BatchSummary, ...]  # the selected batches, newest first
    previous: BatchSummary | None  # the batch the changes compare with
    since: datetime | None
    projects: Mapping[uuid.UUID, ProjectMetrics]
    generated_at: datetime

    @property
    def batch(self) -> BatchSummary:
        return self.batches[0]

    @property
    def marks(self) -> tuple[str, ...]:
        """How the last selected batch differs from the previous one (empty: comparable)."""
        return self.batch.marks

    def headline(self) -> dict[str, Any]:
        """The few figures a notification carries: per project, each brand's visibility (with its interval),
        share of voice, average rank and citation share, and the changes worth a headline (significant
        between comparable batches)."""
        projects: dict[str, Any] = {}
        for pid, pm in self.projects.items():
            flagged = [
                {"brand": b.name, "platform": platform, "metric": c.metric, "before": _r(c.before),
                 "after": _r(c.after), "p_value": round(c.p_value, 6)}
                for b in pm.brands.values()
                for platform, changes in ((None, b.changes), *((p, m.changes) for p, m in b.platforms.items()))
                for c in changes.values() if c.flagged
            ]
            projects[str(pid)] = {
                "answers": pm.answers,
                "brands": {n: {"own": b.own, "visibility": _r(b.visibility), "visibility_ci": _ci(b.visibility_ci),
                               "share_of_voice": _r(b.share_of_voice), "avg_rank": _r(b.avg_rank),
                               "citation_share": _r(b.citation_share)} for n, b in pm.brands.items()},
                "flagged_changes": flagged,
            }
        return {"batch_id": str(self.batch_id), "comparable": not self.marks, "marks": list(self.marks),
                "projects": projects}

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": str(self.batch_id),
            "batch_ids": [str(b.batch_id) for b in self.batches],
            "since": self.since.isoformat() if self.since else None,
            "previous_batch_id": str(self.previous.batch_id) if self.previous else None,
            "generated_at": self.generated_at.isoformat(),
            "marks": list(self.marks), "comparable": not self.marks,
            "batches": [b.to_json() for b in self.batches],
            "projects": {str(p): m.to_json() for p, m in self.projects.items()},
        }


# ------------------------------------------------------------------------------------------- computing


class _Owners:
    """Which tracked brands a cited host is on (``docs.acme.com`` is on ``acme.com``), cached per host."""

    def __init__(self, brands: Sequence[BrandRow]) -> None:
        self.brands = list(brands)
        self._cache: dict[str, tuple[BrandRow, ...]] = {}

    def __call__(self, host: str) -> tuple[BrandRow, ...]:
        found = self._cache.get(host)
        if found is None:
            found = self._cache[host] = tuple(
                b for b in self.brands if any(domain_matches(host, d) for d in b.domains))
        return found


@dataclass(slots=True)
class _Rows:
    """A selection's rows, read once."""

    answers: list[AnswerRow]
    mentions: list[MentionRow]
    citations: list[CitationRow]

    @classmethod
    async def read(cls, store: AnalyticsStore, batch_ids: Sequence[uuid.UUID], project: uuid.UUID | None) -> _Rows:
        citations = await store.citations(batch_ids, project)
        return cls(await store.answers(batch_ids, project), await store.mentions(batch_ids, project),
                   [c for c in citations if c.domain and not is_redirect_host(c.domain)])


def _counts(
    brands: Sequence[BrandRow], answers: Sequence[AnswerRow], mentions: Sequence[MentionRow],
    citations: Sequence[CitationRow], owners: _Owners | None = None,
) -> dict[uuid.UUID, _Counts]:
    """Per brand, the counts over ``answers`` (one project's, of one scope)."""
    owners = owners or _Owners(brands)
    ids = {a.id for a in answers}
    mentioning: dict[uuid.UUID, list[MentionRow]] = defaultdict(list)
    for m in mentions:
        if m.mention_count > 0 and m.ai_response_id in ids:
            mentioning[m.brand_id].append(m)
    mention_total = sum(len(mentioning.get(b.id, ())) for b in brands)
    all_cited = 0
    cited_sources: dict[uuid.UUID, int] = defaultdict(int)
    cited_answers: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    retrieved_answers: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for c in citations:
        if c.ai_response_id not in ids:
            continue
        all_cited += c.cited
        for b in owners(c.domain):
            if c.cited:
                cited_sources[b.id] += 1
                cited_answers[b.id].add(c.ai_response_id)
            else:
                retrieved_answers[b.id].add(c.ai_response_id)
    out: dict[uuid.UUID, _Counts] = {}
    for b in brands:
        mine = mentioning.get(b.id, [])
        ranked = [m.rank for m in mine if m.rank is not None]
        out[b.id] = _Counts(
            answers=len(ids), mentioned=len(mine), mention_total=mention_total,
            occurrences=sum(m.mention_count for m in mine), rank_sum=sum(ranked), ranked=len(ranked),
            cited_sources=cited_sources[b.id], all_cited=all_cited, cited_answers=len(cited_answers[b.id]),
            retrieved_answers=len(retrieved_answers[b.id] - cited_answers[b.id]),
        )
    return out


def _changes(now: _Counts | None, before: _Counts | None, comparable: bool) -> dict[str, Change]:
    if now is None or before is None:
        return {}
    pairs = {
        "visibility": ((before.mentioned, before.answers), (now.mentioned, now.answers)),
        "share_of_voice": ((before.mentioned, before.mention_total), (now.mentioned, now.mention_total)),
        "citation_share": ((before.cited_sources, before.all_cited), (now.cited_sources, now.all_cited)),
    }
    out: dict[str, Change] = {}
    for metric, ((x1, n1), (x2, n2)) in pairs.items():
        test = two_proportion_test(x1, n1, x2, n2)
        if test is None:
            continue
        out[metric] = Change(metric, x1 / n1, x2 / n2, test.p_value, test.method, test.significant, comparable)
    return out


def _served(answers: Iterable[AnswerRow]) -> dict[str, PlatformServed]:
    by: dict[str, list[AnswerRow]] = defaultdict(list)
    for a in answers:
        by[a.platform].append(a)
    return {p: PlatformServed(p, len(rows), tuple(sorted({a.model_version for a in rows if a.model_version})),
                              sum(1 for a in rows if a.searched))
            for p, rows in sorted(by.items())}


def _marks(now: Mapping[str, PlatformServed], before: Mapping[str, PlatformServed] | None) -> tuple[str, ...]:
    """How a batch's serving differs from the previous batch's: a model the provider reported that changed,
    or a search rate that changed beyond noise (the two-proportion test)."""
    if before is None:
        return ()
    marks: list[str] = []
    for p in sorted(now.keys() & before.keys()):
        a, b = before[p], now[p]
        if a.models and b.models and a.models != b.models:
            marks.append(f"{p}: model {', '.join(a.models)} -> {', '.join(b.models)}")
        test = two_proportion_test(a.searched, a.answers, b.searched, b.answers)
        if test is not None and test.significant:
            marks.append(f"{p}: web search ran in {a.searched}/{a.answers} answers, now {b.searched}/{b.answers}")
    for p in sorted(now.keys() - before.keys()):
        marks.append(f"{p}: not in the previous batch")
    for p in sorted(before.keys() - now.keys()):
        marks.append(f"{p}: in the previous batch, not in this one")
    return tuple(marks)


def _summary(info: BatchInfoRow, answers: Sequence[AnswerRow], previous: Mapping[str, PlatformServed] | None
             ) -> BatchSummary:
    served = _served(answers)
    return BatchSummary(info.id, info.idempotency_key, info.trigger, info.status, info.started_at, len(answers),
                        served, _marks(served, previous))


def _domains(
    brands: Sequence[BrandRow], answers: Sequence[AnswerRow], mentions: Sequence[MentionRow],
    citations: Sequence[CitationRow], top: int, owners: _Owners,
) -> tuple[tuple[DomainStat, ...], tuple[CitationGap, ...]]:
    ids = {a.id for a in answers}
    cs = [c for c in citations if c.ai_response_id in ids and c.cited]
    by_site: dict[str, list[CitationRow]] = defaultdict(list)
    for c in cs:
        by_site[c.site or c.domain].append(c)
    stats = [
        DomainStat(site, len(rows), len({c.ai_response_id for c in rows}), len(rows) / len(cs),
                   (owner[0].name if (owner := owners(rows[0].domain)) else None))
        for site, rows in by_site.items()
    ]
    stats.sort(key=lambda d: (-d.citations, -d.answers, d.domain))
    own = {b.id for b in brands if b.is_own}
    names = {b.id: b.name for b in brands}
    mentioned: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)  # answer -> brands mentioned
    for m in mentions:
        if m.ai_response_id in ids and m.mention_count > 0 and m.brand_id in names:
            mentioned[m.ai_response_id].add(m.brand_id)
    gaps: list[CitationGap] = []
    if own:
        for site, rows in by_site.items():
            if any(owners(c.domain) for c in rows):
                continue  # a tracked brand's own site is no outreach target
            answers_of = {c.ai_response_id for c in rows}
            if any(mentioned[a] & own for a in answers_of):
                continue
            with_comp = {a for a in answers_of if mentioned[a] - own}
            if not with_comp:
                continue
            comps = sorted({names[b] for a in with_comp for b in mentioned[a] - own}, key=str.casefold)
            gaps.append(CitationGap(site, len(with_comp), sum(1 for c in rows if c.ai_response_id in with_comp),
                                    tuple(comps)))
        gaps.sort(key=lambda g: (-g.answers, -g.citations, g.domain))
    return tuple(stats[:top]), tuple(gaps[:top])


def _trend_values(brands: Sequence[BrandRow], counts: Mapping[uuid.UUID, _Counts]) -> dict[str, TrendValue]:
    return {b.name: TrendValue(_ratio(c.mentioned, c.answers), Interval.wilson(c.mentioned, c.answers),
                               _ratio(c.mentioned, c.mention_total), _ratio(c.rank_sum, c.ranked),
                               _ratio(c.cited_sources, c.all_cited))
            for b in brands if (c := counts.get(b.id)) is not None}


def _pool(source: AsyncConnectionPool[Any] | Store | AnalyticsStore) -> AnalyticsStore:
    if isinstance(source, AnalyticsStore):
        return source
    if isinstance(source, Store):
        return AnalyticsStore(source.pool)
    return AnalyticsStore(source)


async def compute_report(
    source: AsyncConnectionPool[Any] | Store | AnalyticsStore,
    *,
    project: uuid.UUID | None = None,
    batch: uuid.UUID | None = None,
    since: datetime | None = None,
    trend_batches: int = TREND_BATCHES,
    top_domains: int = TOP_DOMAINS,
) -> Report:
    """The metrics of one batch (``batch``), of the batches started since ``since``, or of the last batch.

    Raises :class:`NoBatch` when there is nothing to report, LookupError subclasses for an unknown batch.
    """
    if batch is not None and since is not None:
        raise ValueError("give a batch or a date, not both")
    store = _pool(source)
    if batch is not None:
        info = await store.batch_info(batch)
        if info is None:
            raise NoBatch(f"no batch {batch}")
        selected = [info]
    else:
        selected = await store.batches_with_answers(project_id=project, since=since,
                                                    limit=None if since is not None else 1)
        if not selected:
            where = f" of project {project}" if project else ""
            when = f" since {since.isoformat()}" if since else ""
            raise NoBatch(f"no batch{where}{when} holds a successful answer")
    latest = selected[0]
    history = [b for b in await store.batches_with_answers(project_id=project, until=latest.started_at,
                                                           limit=trend_batches + 1)
               if b.id != latest.id]
    previous_info = history[0] if history else None
    trend_infos = [latest, *history[: max(0, trend_batches - 1)]][::-1]  # oldest first
    if previous_info is not None and previous_info not in trend_infos:
        trend_infos.insert(0, previous_info)

    # Rows per batch, read once each.
    rows: dict[uuid.UUID, _Rows] = {}
    for info in {i.id: i for i in (*selected, *trend_infos)}.values():
        rows[info.id] = await _Rows.read(store, [info.id], project)
    # Batch summaries in time order, each marked against the one before it.
    ordered = sorted({i.id: i for i in (*selected, *trend_infos)}.values(), key=lambda i: (i.started_at, str(i.id)))
    summaries: dict[uuid.UUID, BatchSummary] = {}
    # The oldest batch shown is compared with the batch before it, if there is one.
    before_served: Mapping[str, PlatformServed] | None = None
    earlier = [b for b in await store.batches_with_answers(project_id=project, until=ordered[0].started_at,
                                                           limit=2) if b.id != ordered[0].id]
    if earlier:
        before_served = _served(await store.answers([earlier[0].id], project))
    for info in ordered:
        summaries[info.id] = _summary(info, rows[info.id].answers, before_served)
        before_served = summaries[info.id].served

    selection = _Rows([], [], [])
    for info in selected:
        r = rows[info.id]
        selection.answers += r.answers
        selection.mentions += r.mentions
        selection.citations += r.citations

    brands_by_project = await load_project_brands(store)
    project_ids = sorted({a.project_id for a in selection.answers} | ({project} if project else set()), key=str)
    projects: dict[uuid.UUID, ProjectMetrics] = {}
    for pid in project_ids:
        pb = brands_by_project.get(pid) or ProjectBrands.of(pid, ())
        projects[pid] = _project(pb, selection, rows, latest.id, previous_info, summaries, trend_infos, top_domains,
                                 single=len(selected) == 1)

    return Report(
        batch_id=latest.id, batches=tuple(summaries[i.id] for i in selected),
        previous=summaries.get(previous_info.id) if previous_info else None, since=since,
        projects=projects, generated_at=datetime.now(UTC),
    )


def _only(project: uuid.UUID, r: _Rows) -> tuple[list[AnswerRow], list[MentionRow], list[CitationRow]]:
    answers = [a for a in r.answers if a.project_id == project]
    ids = {a.id for a in answers}
    return (answers, [m for m in r.mentions if m.ai_response_id in ids],
            [c for c in r.citations if c.ai_response_id in ids])


def _project(
    pb: ProjectBrands, selection: _Rows, rows: Mapping[uuid.UUID, _Rows], latest: uuid.UUID,
    previous: BatchInfoRow | None, summaries: Mapping[uuid.UUID, BatchSummary], trend: Sequence[BatchInfoRow],
    top: int, single: bool,
) -> ProjectMetrics:
    brands = list(pb.brands)
    owners = _Owners(brands)
    answers, mentions, citations = _only(pb.project_id, selection)
    overall = _counts(brands, answers, mentions, citations, owners)
    platforms = sorted({a.platform for a in answers})
    per_platform = {p: _counts(brands, [a for a in answers if a.platform == p], mentions, citations, owners)
                    for p in platforms}

    # Changes: the last selected batch against the previous one, overall and per platform.
    comparable = summaries[latest].comparable
    prev_rows = _only(pb.project_id, rows[previous.id]) if previous is not None else None

    def scoped(r: tuple[list[AnswerRow], list[MentionRow], list[CitationRow]], p: str) -> dict[uuid.UUID, _Counts]:
        return _counts(brands, [a for a in r[0] if a.platform == p], r[1], r[2], owners)

    if single:  # the selection is the last batch: its counts are the ones just made
        now_all, now_platform = overall, per_platform
    else:
        now_rows = _only(pb.project_id, rows[latest])
        now_all = _counts(brands, *now_rows, owners)
        now_platform = {p: scoped(now_rows, p) for p in platforms}
    prev_all = _counts(brands, *prev_rows, owners) if prev_rows is not None else {}
    prev_platform = {p: scoped(prev_rows, p) for p in platforms} if prev_rows is not None else {}

    metrics: list[BrandMetrics] = []
    for b in brands:
        c = overall[b.id]
        plats: dict[str, PlatformMetrics] = {}
        for p in platforms:
            pc = per_platform[p][b.id]
            ch: dict[str, Change] = {}
            if prev_rows is not None:
                ch = _changes(now_platform[p].get(b.id), prev_platform[p].get(b.id), comparable)
            plats[p] = PlatformMetrics.of(p, pc, ch)
        metrics.append(BrandMetrics(
            brand_id=b.id, name=b.name, own=b.is_own, occurrences=c.occurrences, platforms=plats,
            changes=_changes(now_all.get(b.id), prev_all.get(b.id), comparable) if prev_rows is not None else {},
            **Figures.of_counts(c),
        ))
    metrics.sort(key=lambda m: (not m.own, -(m.visibility or 0.0), m.name.casefold()))

    points: list[TrendPoint] = []
    for info in trend:
        if single and info.id == latest:
            counts, n = overall, len(answers)
        else:
            t_answers, t_mentions, t_citations = _only(pb.project_id, rows[info.id])
            counts, n = _counts(brands, t_answers, t_mentions, t_citations, owners), len(t_answers)
        if n:
            points.append(TrendPoint(info.id, info.started_at, n, summaries[info.id].marks,
                                     _trend_values(brands, counts)))

    top_domains, gaps = _domains(brands, answers, mentions, citations, top, owners)
    return ProjectMetrics(
        project_id=pb.project_id, answers=len(answers),
        cited_sources=sum(1 for c in citations if c.cited),
        platforms={p: sum(1 for a in answers if a.platform == p) for p in platforms},
        brands={m.name: m for m in metrics}, top_domains=top_domains, citation_gaps=gaps,
        trend=Trend(tuple(points)),
        unscored_answers=sum(1 for a in answers if a.fingerprint is None),
        stale_answers=sum(1 for a in answers if a.fingerprint is not None and a.fingerprint != pb.fingerprint),
    )
