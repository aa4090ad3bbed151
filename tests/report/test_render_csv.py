"""`--csv DIR`: one file per table, raw numbers, against the seeded batches (tests/report/seed.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.render_csv import CSV_FILES, write_csv
from prompt_analyzer.db import Store

from .seed import MODEL, P, Q, seed_flagged_change, seed_two_batches


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


async def test_one_file_per_table(store: Store, tmp_path: Path) -> None:
    b1, b2 = await seed_two_batches(store)
    paths = write_csv(await compute_report(store, project=P), tmp_path / "out")
    assert [p.name for p in paths] == list(CSV_FILES)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(CSV_FILES)  # no temporary file left

    brands = {r["brand"]: r for r in read(tmp_path / "out" / "brands.csv")}
    assert list(brands) == ["Acme", "Globex", "Initech"]
    acme = brands["Acme"]
    assert (acme["project_id"], acme["own"], acme["answers"], acme["mentions"]) == (str(P), "true", "7", "3")
    assert float(acme["visibility"]) == pytest.approx(3 / 7, abs=1e-6)
    assert float(acme["visibility_low"]) == pytest.approx(0.15822, abs=1e-4)
    assert float(acme["visibility_high"]) == pytest.approx(0.74954, abs=1e-4)
    assert float(acme["share_of_voice"]) == pytest.approx(3 / 8)
    assert float(acme["avg_rank"]) == pytest.approx(4 / 3, abs=1e-5)
    assert float(acme["citation_share"]) == pytest.approx(0.2)
    # the change against batch 1 (0/3 -> 3/7): Fisher p = 57/120, not flagged (and not comparable)
    assert float(acme["visibility_change"]) == pytest.approx(3 / 7, abs=1e-6)
    assert float(acme["visibility_p_value"]) == pytest.approx(57 / 120, abs=1e-6)
    assert acme["visibility_flagged"] == "false"
    assert float(brands["Initech"]["visibility_low"]) == pytest.approx(0.0822, abs=1e-4)

    platforms = read(tmp_path / "out" / "platforms.csv")
    assert len(platforms) == 6  # 3 brands x 2 platforms
    oa = next(r for r in platforms if r["platform"] == "openai" and r["brand"] == "Acme")
    assert (oa["answers"], oa["mentions"], float(oa["citation_share"])) == ("4", "2", pytest.approx(1 / 6, abs=1e-6))
    initech = next(r for r in platforms if r["platform"] == "openai" and r["brand"] == "Initech")
    assert float(initech["avg_rank"]) == 1.0

    trend = read(tmp_path / "out" / "trend.csv")
    assert [(r["batch_id"], r["brand"], r["comparable"]) for r in trend] == [
        (str(b1), "Acme", "true"), (str(b1), "Globex", "true"), (str(b1), "Initech", "true"),
        (str(b2), "Acme", "false"), (str(b2), "Globex", "false"), (str(b2), "Initech", "false")]
    assert trend[3]["marks"] == f"openai: model gpt-4.1-mini-2025-04-14 -> {MODEL}"
    assert trend[0]["avg_rank"] == ""  # nobody named in batch 1: no rank, an empty cell

    sites = read(tmp_path / "out" / "top_domains.csv")
    assert [(r["site"], r["citations"], r["brand"]) for r in sites][:3] == [
        ("acme.com", "2", "Acme"), ("capterra.com", "2", ""), ("g2.com", "2", "")]
    assert all("vertexaisearch" not in r["site"] and r["site"] != "google.com" for r in sites)
    gaps = read(tmp_path / "out" / "citation_gaps.csv")
    assert [(r["site"], r["competitors"]) for r in gaps] == [("reddit.com", "Initech"), ("techradar.com", "Globex")]
    batches = read(tmp_path / "out" / "batches.csv")
    assert {(r["platform"], r["models"], r["answers"]) for r in batches} == {
        ("openai", MODEL, "4"), ("gemini", "gemini-2.5-flash", "3")}


async def test_flagged_change_and_formula_safe_cells(store: Store, tmp_path: Path) -> None:
    await seed_flagged_change(store)
    write_csv(await compute_report(store, project=Q), tmp_path)
    brands = {r["brand"]: r for r in read(tmp_path / "brands.csv")}
    assert brands["Zeta"]["visibility_flagged"] == "true"
    assert float(brands["Zeta"]["visibility_change"]) == pytest.approx(0.75)
    assert float(brands["Zeta"]["visibility_p_value"]) < 1e-4
    # A spreadsheet would run "=Evil Corp" as a formula: the cell is quoted.
    assert "'=Evil Corp" in brands
