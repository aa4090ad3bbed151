"""How a figure of the visibility report is written for a person: the one wording the terminal tables and
the HTML page share (CSV and JSON keep the raw numbers).

Proportions as whole percentages with their 95% interval ("43% (16-75%)"); an average rank with one
decimal; a change only when it is flagged (significant between comparable batches), as percentage points
with its p-value; a change between batches that differ in served model or search behaviour is never
worded as a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from .metrics import BatchSummary, Change, Interval

__all__ = ["batch_label", "change_text", "interval_text", "pct", "rank_text", "share_text"]

DASH = "\u2013"  # en dash: empty cells and ranges
METRIC_NAMES = {"visibility": "visibility", "share_of_voice": "share of voice", "citation_share": "citation share"}


def pct(x: float | None) -> str:
    """``0.4286`` -> ``43%``; None (no denominator) -> an en dash."""
    if x is None:
        return DASH
    v = 100 * x
    return f"{v:.0f}%" if v >= 1 or v == 0 else f"{v:.1f}%"


def interval_text(ci: Interval | None) -> str:
    """``(16-75%)``, or nothing when there is no interval."""
    if ci is None:
        return ""
    return f"({100 * ci.low:.0f}{DASH}{100 * ci.high:.0f}%)"


def share_text(x: float | None, ci: Interval | None) -> str:
    """A proportion with its interval: ``43% (16-75%)``."""
    return f"{pct(x)} {interval_text(ci)}".strip()


def rank_text(x: float | None) -> str:
    return DASH if x is None else f"{x:.1f}"


def change_text(changes: Mapping[str, Change], metric: str = "visibility") -> str:
    """A flagged change (``+12 pts (p=0.003)``), ``not comparable`` when the batches differ in what they
    asked, else nothing: a change that may be noise is not news."""
    ch = changes.get(metric)
    if ch is None:
        return ""
    if not ch.comparable:
        return "not comparable" if ch.significant else ""
    if not ch.flagged:
        return ""
    arrow = "\u25b2" if ch.delta > 0 else "\u25bc"
    return f"{arrow} {100 * ch.delta:+.0f} pts (p={ch.p_value:.2g})"


def batch_label(b: BatchSummary) -> str:
    """``daily:2026-11-02 (2026-11-02 06:00 UTC)``."""
    when = b.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{b.key} ({when})" if b.key else when
