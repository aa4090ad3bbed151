"""`analyze report --csv DIR`: one CSV file per table of the report, for spreadsheets and BI tools.

Raw numbers (proportions as fractions, intervals as ``*_low`` / ``*_high`` columns, empty where there is
no value), one row per record, a ``project_id`` column in every file so several projects stack:

========================  ==============================================================================
``brands.csv``            a brand over all platforms of the selection, with the change since the previous
                          batch (``*_change``, its ``*_p_value`` and whether it is ``*_flagged``)
``platforms.csv``         a brand on one platform
``trend.csv``             a brand in one batch of the trend (oldest first), with that batch's marks
``top_domains.csv``       a cited site
``citation_gaps.csv``     a site cited with competitors and never with the own brand
``batches.csv``           a selected batch and platform: models served, answers that searched, marks
========================  ==============================================================================

Files are written whole or not at all (a temporary file renamed into place).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..ops import write_metrics_file
from .metrics import Change, Interval, Report

__all__ = ["CSV_FILES", "render_csv", "write_csv"]

CSV_FILES = ("brands.csv", "platforms.csv", "trend.csv", "top_domains.csv", "citation_gaps.csv", "batches.csv")
_METRICS = ("visibility", "share_of_voice", "citation_share")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _ci(ci: Interval | None) -> tuple[str, str]:
    return ("", "") if ci is None else (_num(ci.low), _num(ci.high))


def _changes(changes: Mapping[str, Change]) -> list[str]:
    out: list[str] = []
    for m in _METRICS:
        ch = changes.get(m)
        out += ["", "", ""] if ch is None else [_num(ch.delta), _num(ch.p_value), str(ch.flagged).lower()]
    return out


_FIGURES = ["answers", "mentions", "visibility", "visibility_low", "visibility_high", "share_of_voice",
            "share_of_voice_low", "share_of_voice_high", "avg_rank", "citation_share", "citation_share_low",
            "citation_share_high", "cited_sources", "cited_answers", "retrieved_answers"]
_CHANGE_COLUMNS = [f"{m}_{k}" for m in _METRICS for k in ("change", "p_value", "flagged")]


def render_csv(report: Report) -> dict[str, str]:
    """Every table as CSV text, by file name (:data:`CSV_FILES`)."""
    brands: list[list[Any]] = []
    platforms: list[list[Any]] = []
    trend: list[list[Any]] = []
    domains: list[list[Any]] = []
    gaps: list[list[Any]] = []
    for pid, pm in report.projects.items():
        for b in pm.brands.values():
            brands.append([pid, b.name, str(b.own).lower(), b.answers, b.mentions, _num(b.visibility),
                           *_ci(b.visibility_ci), _num(b.share_of_voice), *_ci(b.share_of_voice_ci),
                           _num(b.avg_rank), _num(b.citation_share), *_ci(b.citation_share_ci), b.cited_sources,
                           b.cited_answers, b.retrieved_answers, b.occurrences, *_changes(b.changes)])
            for p, m in b.platforms.items():
                platforms.append([pid, p, b.name, str(b.own).lower(), m.answers, m.mentions, _num(m.visibility),
                                  *_ci(m.visibility_ci), _num(m.share_of_voice), *_ci(m.share_of_voice_ci),
                                  _num(m.avg_rank), _num(m.citation_share), *_ci(m.citation_share_ci),
                                  m.cited_sources, m.cited_answers, m.retrieved_answers, *_changes(m.changes)])
        for point in pm.trend.points:
            for name, v in point.brands.items():
                trend.append([pid, point.batch_id, point.started_at.isoformat(), point.answers, name,
                              _num(v.visibility), *_ci(v.visibility_ci), _num(v.share_of_voice), _num(v.avg_rank),
                              _num(v.citation_share), str(not point.marks).lower(), "; ".join(point.marks)])
        for d in pm.top_domains:
            domains.append([pid, d.domain, d.citations, _num(d.share), d.answers, d.brand or ""])
        for g in pm.citation_gaps:
            gaps.append([pid, g.domain, g.answers, g.citations, "; ".join(g.competitors)])
    batches = [
        [b.batch_id, b.key or "", b.trigger, b.status, b.started_at.isoformat(), p, s.answers, "; ".join(s.models),
         s.searched, str(b.comparable).lower(), "; ".join(b.marks)]
        for b in report.batches for p, s in b.served.items()
    ]
    return {
        "brands.csv": _csv(["project_id", "brand", "own", *_FIGURES, "occurrences", *_CHANGE_COLUMNS], brands),
        "platforms.csv": _csv(["project_id", "platform", "brand", "own", *_FIGURES, *_CHANGE_COLUMNS], platforms),
        "trend.csv": _csv(["project_id", "batch_id", "started_at", "answers", "brand", "visibility",
                           "visibility_low", "visibility_high", "share_of_voice", "avg_rank", "citation_share",
                           "comparable", "marks"], trend),
        "top_domains.csv": _csv(["project_id", "site", "citations", "share", "answers", "brand"], domains),
        "citation_gaps.csv": _csv(["project_id", "site", "answers", "citations", "competitors"], gaps),
        "batches.csv": _csv(["batch_id", "key", "trigger", "status", "started_at", "platform", "answers", "models",
                             "searched", "comparable", "marks"], batches),
    }


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([_safe(v) for v in row] for row in rows)
    return buf.getvalue()


def _safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (a brand or site named ``=HYPERLINK(...)``)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(report: Report, directory: Path) -> list[Path]:
    """Write :func:`render_csv`'s files into ``directory`` (created if missing); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, text in render_csv(report).items():
        path = directory / name
        write_metrics_file(path, text)  # the project's atomic write (a temporary file renamed into place)
        paths.append(path)
    return paths
