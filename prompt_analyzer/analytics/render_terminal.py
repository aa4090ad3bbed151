"""`analyze report` at a terminal: the visibility report as rich tables a marketing lead reads.

Per project: what was measured (batch, answers per platform, and any change in served model or search
behaviour since the previous batch, which makes changes incomparable), then the brands (own first) with
visibility and its 95% interval, share of voice, average rank, citation share and a change column that
shows only changes unlikely to be noise; the same per platform; the trend over the last batches; the
most cited sites and the citation gaps.  Wording of each figure: :mod:`.render_text`.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .metrics import BrandMetrics, Change, ProjectMetrics, Report
from .render_text import DASH, batch_label, change_text, pct, rank_text, share_text

__all__ = ["render_terminal"]


def render_terminal(report: Report, console: Console) -> None:
    """Print ``report``; user-supplied names are printed as text, never as rich markup."""
    b = report.batch
    head = Text("Visibility report", style="bold")
    if report.since is not None:
        head.append(f"  {len(report.batches)} batch(es) since {report.since:%Y-%m-%d}; last {batch_label(b)}")
    else:
        head.append(f"  batch {batch_label(b)}")
    console.print(head)
    if report.previous is not None:
        console.print(Text(f"Changes compare with batch {batch_label(report.previous)}.", style="dim"))
    for mark in report.marks:
        console.print(Text(f"! {mark}: changes since the previous batch are not comparable", style="yellow"))
    for pm in report.projects.values():
        _project(pm, console)


def _project(pm: ProjectMetrics, console: Console) -> None:
    console.print()
    plats = ", ".join(f"{p} {n}" for p, n in pm.platforms.items())
    console.print(Text(f"Project {pm.project_id}: {pm.answers} answers ({plats}), {pm.cited_sources} cited sources",
                       style="bold"))
    if pm.unscored_answers or pm.stale_answers:
        console.print(Text(f"! {pm.unscored_answers + pm.stale_answers} answer(s) not scored with the current "
                           "brands: run `analyze score` for exact figures", style="yellow"))
    if not pm.brands:
        console.print("No tracked brands in this project: add them with `analyze brands add`.")
        return
    console.print(_brands(pm))
    if len(pm.platforms) > 1:
        console.print(_platforms(pm))
    if len(pm.trend.points) > 1:
        console.print(_trend(pm))
    if pm.top_domains:
        console.print(_domains(pm))
    if pm.citation_gaps:
        console.print(_gaps(pm))


def _name(b: BrandMetrics) -> Text:
    return Text(f"{b.name} (own)" if b.own else b.name, style="bold" if b.own else "")


def _brands(pm: ProjectMetrics) -> Table:
    t = Table(title="Brands", title_justify="left")
    t.add_column("Brand")
    t.add_column("Visibility (95% CI)", justify="right")
    t.add_column("Mentioned", justify="right")
    t.add_column("Share of voice", justify="right")
    t.add_column("Avg rank", justify="right")
    t.add_column("Citation share", justify="right")
    t.add_column("Change", justify="right")
    for b in pm.brands.values():
        t.add_row(_name(b), share_text(b.visibility, b.visibility_ci), f"{b.mentions}/{b.answers}",
                  pct(b.share_of_voice), rank_text(b.avg_rank), pct(b.citation_share),
                  _changes(b.changes))
    return t


def _changes(changes: Mapping[str, Change]) -> Text:
    parts = []
    for metric, label in (("visibility", "vis"), ("share_of_voice", "SoV"), ("citation_share", "cit")):
        text = change_text(changes, metric)
        if text:
            parts.append(f"{label} {text}")
    joined = "; ".join(parts)
    style = "yellow" if "not comparable" in joined else ("green" if "\u25b2" in joined else "red")
    return Text(joined, style=style if joined else "")


def _platforms(pm: ProjectMetrics) -> Table:
    t = Table(title="By platform", title_justify="left")
    t.add_column("Platform")
    t.add_column("Brand")
    for col in ("Answers", "Visibility (95% CI)", "Share of voice", "Avg rank", "Citation share", "Change"):
        t.add_column(col, justify="right")
    for platform in pm.platforms:
        for i, b in enumerate(pm.brands.values()):
            m = b.platforms.get(platform)
            if m is None:
                continue
            t.add_row(Text(platform if i == 0 else ""), _name(b), str(m.answers),
                      share_text(m.visibility, m.visibility_ci), pct(m.share_of_voice), rank_text(m.avg_rank),
                      pct(m.citation_share), _changes(m.changes), end_section=(i == len(pm.brands) - 1))
    return t


def _trend(pm: ProjectMetrics) -> Table:
    t = Table(title="Visibility over the last batches", title_justify="left")
    t.add_column("Batch started")
    t.add_column("Answers", justify="right")
    names = list(pm.brands)
    for n in names:
        t.add_column(Text(n), justify="right")
    t.add_column("Served differently")
    for p in pm.trend.points:
        cells = [share_text(v.visibility, v.visibility_ci) if (v := p.brands.get(n)) else DASH for n in names]
        t.add_row(f"{p.started_at:%Y-%m-%d %H:%M}", str(p.answers), *cells,
                  Text("; ".join(p.marks), style="yellow"))
    return t


def _domains(pm: ProjectMetrics) -> Table:
    t = Table(title="Most cited sites", title_justify="left")
    t.add_column("Site")
    t.add_column("Citations", justify="right")
    t.add_column("Share", justify="right")
    t.add_column("Answers", justify="right")
    t.add_column("Brand's site")
    for d in pm.top_domains:
        t.add_row(Text(d.domain), str(d.citations), pct(d.share), str(d.answers), Text(d.brand or ""))
    return t


def _gaps(pm: ProjectMetrics) -> Table:
    t = Table(title="Citation gaps", title_justify="left",
              caption="sites cited in answers naming a competitor, never in one naming your brand",
              caption_justify="left")
    t.add_column("Site")
    t.add_column("Answers", justify="right")
    t.add_column("Competitors mentioned")
    for g in pm.citation_gaps:
        t.add_row(Text(g.domain), str(g.answers), Text(", ".join(g.competitors)))
    return t
