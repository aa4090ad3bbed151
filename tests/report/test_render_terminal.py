"""The terminal tables against the seeded batches (figures by hand in tests/report/seed.py)."""

from __future__ import annotations

import io

from rich.console import Console

from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.render_terminal import render_terminal
from prompt_analyzer.db import Store

from .seed import MODEL, P, Q, seed_flagged_change, seed_two_batches


def rendered(report: object) -> str:
    buf = io.StringIO()
    render_terminal(report, Console(file=buf, width=220, color_system=None))  # type: ignore[arg-type]
    return buf.getvalue()


def row(text: str, start: str, after: str = "") -> list[str]:
    """The cells of the first table row starting with ``start`` (rich draws ``│`` between cells), below the
    line holding ``after``."""
    for line in text[text.index(after):].splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if cells and cells[0] == start:
            return cells
    raise AssertionError(f"no row {start!r} in:\n{text}")


async def test_brands_platforms_trend_and_sites(store: Store) -> None:
    _, b2 = await seed_two_batches(store)
    text = rendered(await compute_report(store, project=P))
    assert "batch daily:2 (2026-11-02 00:00 UTC)" in text
    assert "Changes compare with batch daily:1 (2026-11-01 00:00 UTC)." in text
    assert f"! openai: model gpt-4.1-mini-2025-04-14 -> {MODEL}: changes since the previous batch are not " \
           "comparable" in text
    assert f"Project {P}: 7 answers (gemini 3, openai 4), 10 cited sources" in text
    # brand, visibility (95% CI), mentioned, share of voice, avg rank, citation share, change
    assert row(text, "Acme (own)") == ["Acme (own)", "43% (16–75%)", "3/7", "38%", "1.3", "20%", ""]
    assert row(text, "Globex") == ["Globex", "43% (16–75%)", "3/7", "38%", "1.3", "10%", ""]
    assert row(text, "Initech") == ["Initech", "29% (8–64%)", "2/7", "25%", "1.5", "0%", ""]
    # per platform: openai Acme 2/4 = 50%, SoV 2/5, rank 1.5, citation share 1/6; gemini Acme 1/3, rank 1
    assert row(text, "openai")[1:7] == ["Acme (own)", "4", "50% (15–85%)", "40%", "1.5", "17%"]
    assert row(text, "gemini")[1:7] == ["Acme (own)", "3", "33% (6–79%)", "33%", "1.0", "25%"]
    # the trend: batch 1 (nobody named in 3 answers), batch 2 marked as served differently
    assert row(text, "2026-11-01 00:00")[:5] == ["2026-11-01 00:00", "3", "0% (0–56%)", "0% (0–56%)", "0% (0–56%)"]
    assert row(text, "2026-11-02 00:00")[-1].startswith("openai: model")
    # sites: acme.com 2 of 10 cited sources, Acme's own site; gaps: reddit (Initech) and techradar (Globex)
    assert row(text, "acme.com") == ["acme.com", "2", "20%", "2", "Acme"]
    assert row(text, "reddit.com") == ["reddit.com", "1", "10%", "1", ""]
    assert row(text, "reddit.com", after="Citation gaps") == ["reddit.com", "1", "Initech"]
    assert row(text, "techradar.com", after="Citation gaps") == ["techradar.com", "1", "Globex"]
    assert "vertexaisearch" not in text


async def test_only_significant_changes_are_flagged(store: Store) -> None:
    await seed_flagged_change(store)
    text = rendered(await compute_report(store, project=Q))
    assert "not comparable" not in text  # same model, search behaviour unchanged
    zeta = row(text, "Zeta (own)")
    # 0/20 -> 15/20: +75 points, flagged (Fisher's exact test); no brand was named before, so share of
    # voice had no denominator then, and no source is cited: neither has a change
    assert zeta[1] == "75% (53–89%)" and zeta[2] == "15/20"
    assert zeta[6].startswith("vis ▲ +75 pts (p=") and "SoV" not in zeta[6]
    assert row(text, "=Evil Corp")[1:3] == ["0% (0–16%)", "0/20"]
    assert row(text, "=Evil Corp")[6] == ""  # 0/20 both times: no change, nothing flagged
