"""`analyze report --html FILE`: the visibility report as one self-contained page with charts.

One file that opens anywhere without a network: plotly.js is inlined once (``include_plotlyjs=True`` on the
first chart), every chart is a plotly figure whose data sit in the page, the style is inline and there is
no font, image or script from elsewhere.  Per project: a headline for the own brand(s), then the charts

* visibility per platform, one bar per brand with its 95% Wilson interval as error bars;
* share of voice among the tracked brands (a donut);
* average rank among the tracked brands, per platform (1 = named first; lower is better);
* the trend of visibility over the last batches, with intervals, batches served differently marked;
* the most cited sites, the brands' own sites coloured;

and the tables a reader checks the charts against (brands, citation gaps).  Text a user or a provider
supplied (brand names, sites) is HTML-escaped in the page and JSON-escaped by plotly in the charts.
Wording of each figure: :mod:`.render_text`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..ops import write_metrics_file
from .metrics import BrandMetrics, ProjectMetrics, Report
from .render_text import batch_label, change_text, pct, rank_text, share_text

__all__ = ["CHART_IDS", "render_html", "write_html"]

# Chart ids within a project's section (``<id>-<n>`` for the n-th project): what the browser test looks for.
CHART_IDS = ("visibility", "share-of-voice", "rank", "trend", "domains")
_OWN, _OTHER = "#1f6feb", "#8b949e"
_PALETTE = ("#1f6feb", "#d29922", "#3fb950", "#db61a2", "#a371f7", "#f85149", "#39c5cf", "#8b949e")
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_LAYOUT: dict[str, Any] = {"template": "plotly_white", "height": 360, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                           "font": {"family": "system-ui, sans-serif", "size": 13}}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 24px; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #d0d7de; }
.meta { color: #656d76; } .mark { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px;
  border-radius: 6px; margin: 8px 0; }
.headline { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 16px; min-width: 180px; }
.card .v { font-size: 1.8em; font-weight: 600; } .card .l { color: #656d76; font-size: 0.9em; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; } .wide { grid-column: 1 / -1; }
table { border-collapse: collapse; margin: 12px 0; width: 100%; font-size: 0.95em; }
th, td { border-bottom: 1px solid #d0d7de; padding: 6px 8px; text-align: right; }
th:first-child, td:first-child, .t { text-align: left; } .up { color: #1a7f37; } .down { color: #cf222e; }
.warn { color: #9a6700; } footer { margin-top: 3em; color: #656d76; font-size: 0.85em; }
"""


def render_html(report: Report) -> str:
    """The whole page as text."""
    b = report.batch
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Visibility report: {_e(batch_label(b))}</title><style>{_STYLE}</style></head><body>",
        "<h1>AI visibility report</h1>",
        f'<p class="meta">{_e(_selection(report))}. Generated {report.generated_at:%Y-%m-%d %H:%M} UTC. '
        "Intervals are 95% Wilson intervals; a change is shown only when it is unlikely to be noise "
        "(two-proportion test, p &lt; 0.05) between batches served the same way.</p>",
    ]
    for mark in report.marks:
        parts.append(f'<p class="mark">Served differently from the previous batch: {_e(mark)}. '
                     "Changes since then are not comparable.</p>")
    first = True
    for n, pm in enumerate(report.projects.values(), start=1):
        section, first = _project(pm, n, first)
        parts.append(section)
    parts.append("<footer>prompt-analyzer <code>analyze report --html</code>. Definitions: docs/metrics.md."
                 "</footer></body></html>")
    return "\n".join(parts)


def write_html(report: Report, path: Path) -> Path:
    """Write the page to ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_metrics_file(path, render_html(report))  # the project's atomic write (a temporary file renamed)
    return path


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _selection(report: Report) -> str:
    if report.since is not None:
        return f"{len(report.batches)} batch(es) since {report.since:%Y-%m-%d}, the last {batch_label(report.batch)}"
    return f"Batch {batch_label(report.batch)}"


def _project(pm: ProjectMetrics, n: int, first: bool) -> tuple[str, bool]:
    plats = ", ".join(f"{_e(p)} {c}" for p, c in pm.platforms.items())
    out = [f'<section id="project-{n}"><h2>Project {_e(pm.project_id)}</h2>',
           f'<p class="meta">{pm.answers} answers ({plats}); {pm.cited_sources} cited sources.</p>']
    if pm.unscored_answers or pm.stale_answers:
        out.append(f'<p class="mark">{pm.unscored_answers + pm.stale_answers} answer(s) not scored with the current '
                   "brands: run <code>analyze score</code> for exact figures.</p>")
    if not pm.brands:
        out.append("<p>No tracked brands in this project: add them with <code>analyze brands add</code>.</p>")
        return "\n".join(out) + "</section>", first
    out.append(_headline(pm))
    figures = [
        ("visibility", _visibility(pm), ""), ("share-of-voice", _share_of_voice(pm), ""),
        ("rank", _rank(pm), ""), ("trend", _trend(pm), "wide"), ("domains", _domains(pm), "wide"),
    ]
    out.append('<div class="grid">')
    for chart_id, fig, cls in figures:
        snippet = fig.to_html(full_html=False, include_plotlyjs=first, config=_CONFIG, div_id=f"{chart_id}-{n}")
        first = False
        out.append(f'<div class="chart {cls}" data-chart="{chart_id}">{snippet}</div>')
    out.append("</div>")
    out.append(_brands_table(pm))
    if pm.citation_gaps:
        out.append(_gaps_table(pm))
    out.append("</section>")
    return "\n".join(out), first


def _headline(pm: ProjectMetrics) -> str:
    cards = []
    for b in pm.own or tuple(pm.brands.values())[:1]:
        change = change_text(b.changes)
        cls = "up" if change.startswith("\u25b2") else "down" if change.startswith("\u25bc") else "warn"
        cards += [
            f'<div class="card"><div class="l">{_e(b.name)}: visibility</div><div class="v">{pct(b.visibility)}</div>'
            f'<div class="l">{_e(share_text(b.visibility, b.visibility_ci))} of {b.answers} answers'
            f'{f" <span class={chr(34)}{cls}{chr(34)}>{_e(change)}</span>" if change else ""}</div></div>',
            f'<div class="card"><div class="l">share of voice</div><div class="v">{pct(b.share_of_voice)}</div>'
            '<div class="l">of tracked brands\' mentions</div></div>',
            f'<div class="card"><div class="l">average rank</div><div class="v">{rank_text(b.avg_rank)}</div>'
            '<div class="l">1 = named first</div></div>',
            f'<div class="card"><div class="l">citation share</div><div class="v">{pct(b.citation_share)}</div>'
            '<div class="l">of cited sources on its sites</div></div>',
        ]
    return f'<div class="headline">{"".join(cards)}</div>'


def _colors(brands: Sequence[BrandMetrics]) -> dict[str, str]:
    return {b.name: _PALETTE[i % len(_PALETTE)] for i, b in enumerate(brands)}


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    fig.update_layout(**_LAYOUT, title={"text": title}, **extra)
    return fig


def _visibility(pm: ProjectMetrics) -> go.Figure:
    brands = list(pm.brands.values())
    colors = _colors(brands)
    fig = go.Figure()
    platforms = list(pm.platforms)
    for b in brands:
        xs, ys, up, down = [], [], [], []
        for p in platforms:
            m = b.platforms.get(p)
            if m is None or m.visibility is None:
                continue
            xs.append(p)
            ys.append(m.visibility)
            up.append((m.visibility_ci.high - m.visibility) if m.visibility_ci else 0)
            down.append((m.visibility - m.visibility_ci.low) if m.visibility_ci else 0)
        fig.add_bar(name=b.name, x=xs, y=ys, marker_color=colors[b.name],
                    error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
                    hovertemplate="%{x}: %{y:.0%}<extra>" + _hover(b.name) + "</extra>")
    return _layout(fig, "Visibility per platform (95% interval)", barmode="group",
                   yaxis={"tickformat": ".0%", "range": [0, 1]})


def _hover(name: str) -> str:
    return name.replace("%", "%%")  # plotly templates read %{...}: a brand's own % stays text


def _share_of_voice(pm: ProjectMetrics) -> go.Figure:
    brands = [b for b in pm.brands.values() if b.mentions]
    colors = _colors(list(pm.brands.values()))
    fig = go.Figure(go.Pie(labels=[b.name for b in brands], values=[b.mentions for b in brands], hole=0.45,
                           marker={"colors": [colors[b.name] for b in brands]}, sort=False,
                           textinfo="label+percent"))
    if not brands:
        fig.add_annotation(text="no tracked brand mentioned", showarrow=False)
    return _layout(fig, "Share of voice (answers mentioning each brand)")


def _rank(pm: ProjectMetrics) -> go.Figure:
    brands = list(pm.brands.values())
    colors = _colors(brands)
    fig = go.Figure()
    for b in brands:
        pts = [(p, m.avg_rank) for p in pm.platforms if (m := b.platforms.get(p)) and m.avg_rank is not None]
        fig.add_bar(name=b.name, x=[p for p, _ in pts], y=[r for _, r in pts], marker_color=colors[b.name],
                    hovertemplate="%{x}: rank %{y:.1f}<extra>" + _hover(b.name) + "</extra>")
    return _layout(fig, "Average rank among tracked brands (1 = named first)", barmode="group",
                   yaxis={"rangemode": "tozero", "dtick": 1})


def _trend(pm: ProjectMetrics) -> go.Figure:
    brands = list(pm.brands.values())
    colors = _colors(brands)
    points = pm.trend.points
    xs = [p.started_at.strftime("%Y-%m-%d %H:%M") for p in points]
    fig = go.Figure()
    for b in brands:
        vals = [p.brands.get(b.name) for p in points]
        ys = [v.visibility if v else None for v in vals]
        up = [(v.visibility_ci.high - v.visibility) if v and v.visibility_ci and v.visibility is not None else 0
              for v in vals]
        down = [(v.visibility - v.visibility_ci.low) if v and v.visibility_ci and v.visibility is not None else 0
                for v in vals]
        fig.add_scatter(name=b.name, x=xs, y=ys, mode="lines+markers", line={"color": colors[b.name]},
                        error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
                        hovertemplate="%{x}: %{y:.0%}<extra>" + _hover(b.name) + "</extra>")
    for x, p in zip(xs, points, strict=True):
        if p.marks:
            fig.add_vline(x=x, line_dash="dot", line_color="#d4a72c")
            fig.add_annotation(x=x, y=1, yref="paper", text="served differently", showarrow=False,
                               hovertext="<br>".join(html.escape(m) for m in p.marks), font={"color": "#9a6700"})
    return _layout(fig, f"Visibility over the last {len(points)} batch(es)",
                   yaxis={"tickformat": ".0%", "range": [0, 1]}, xaxis={"type": "category"})


def _domains(pm: ProjectMetrics) -> go.Figure:
    rows = list(reversed(pm.top_domains))  # the most cited at the top of a horizontal bar chart
    colors = _colors(list(pm.brands.values()))
    fig = go.Figure(go.Bar(
        x=[d.citations for d in rows], y=[d.domain for d in rows], orientation="h",
        marker_color=[colors.get(d.brand, _OWN) if d.brand else _OTHER for d in rows],
        text=[f"{pct(d.share)}" + (f" ({d.brand})" if d.brand else "") for d in rows], textposition="auto",
        hovertemplate="%{y}: %{x} citations<extra></extra>",
    ))
    if not rows:
        fig.add_annotation(text="no cited sources", showarrow=False)
    return _layout(fig, "Most cited sites", xaxis={"title": {"text": "cited sources"}, "tickformat": "d"})


def _brands_table(pm: ProjectMetrics) -> str:
    rows = ["<table><thead><tr><th>Brand</th><th>Visibility (95% CI)</th><th>Mentioned</th><th>Share of voice</th>"
            "<th>Avg rank</th><th>Citation share</th><th>Change</th></tr></thead><tbody>"]
    for b in pm.brands.values():
        change = change_text(b.changes)
        cls = "up" if change.startswith("\u25b2") else "down" if change.startswith("\u25bc") else "warn"
        name = f"<strong>{_e(b.name)}</strong> (own)" if b.own else _e(b.name)
        rows.append(f"<tr><td>{name}</td><td>{_e(share_text(b.visibility, b.visibility_ci))}</td>"
                    f"<td>{b.mentions}/{b.answers}</td><td>{pct(b.share_of_voice)}</td><td>{rank_text(b.avg_rank)}</td>"
                    f'<td>{pct(b.citation_share)}</td><td class="{cls}">{_e(change)}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _gaps_table(pm: ProjectMetrics) -> str:
    rows = ["<h3>Citation gaps: sites cited with competitors, never with your brand</h3><table><thead><tr>"
            "<th>Site</th><th>Answers</th><th class=\"t\">Competitors mentioned</th></tr></thead><tbody>"]
    for g in pm.citation_gaps:
        rows.append(f"<tr><td>{_e(g.domain)}</td><td>{g.answers}</td>"
                    f"<td class=\"t\">{_e(', '.join(g.competitors))}</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)
