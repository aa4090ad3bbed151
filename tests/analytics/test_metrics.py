"""Metrics on a seeded batch, against numbers worked out by hand (below, next to each assertion).

The seed: project P tracks Acme (own, acme.com), Globex (globex.io) and Initech (no domain).

Batch 2 (the one reported), 7 successful answers and one error:
  openai (model gpt-4.1-mini-2025-06-01)
    o1 "Acme ... Globex ..."            cites acme.com/pricing, g2.com/a; retrieved only: globex.io
    o2 "Globex ..., followed by Acme"    cites g2.com/b, capterra.com
    o3 "Initech ..."                     cites capterra.com, reddit.com
    o4 no brand                          no source
    o5 error "Acme Acme"                 (not an answer: excluded)
  gemini (model gemini-2.5-flash)
    g1 "I couldn't find Acme. Globex..." cites a grounding redirect (never counted), globex.io, techradar.com
    g2 "Acme and Initech ..."            cites docs.acme.com, en.wikipedia.org
    g3 no brand                          no source

Mentions (rank): o1 Acme 1, Globex 2; o2 Globex 1, Acme 2; o3 Initech 1; g1 Globex 1 (Acme negated);
g2 Acme 1, Initech 2.
Batch 1 (the previous one): 3 answers, no brand mentioned, openai on model gpt-4.1-mini-2025-04-14.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from prompt_analyzer.analytics.metrics import NoBatch, compute_report
from prompt_analyzer.analytics.scoring import score
from prompt_analyzer.db import Store
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand

from .seed import Ans, Cite, seed_batch

P = uuid.UUID("33333333-3333-4333-8333-333333333333")
OPENAI_NEW, OPENAI_OLD, GEMINI = "gpt-4.1-mini-2025-06-01", "gpt-4.1-mini-2025-04-14", "gemini-2.5-flash"
REDIRECT = "vertexaisearch.cloud.google.com"


def c(url: str, domain: str, site: str, cited: bool = True) -> Cite:
    return Cite(url, domain, site, cited)


BATCH2 = [
    Ans("openai", "Acme is the best choice. Globex is also good.",
        [c("https://acme.com/pricing", "acme.com", "acme.com"), c("https://g2.com/a", "g2.com", "g2.com"),
         c("https://globex.io/", "globex.io", "globex.io", cited=False)], OPENAI_NEW),
    Ans("openai", "Globex leads, followed by Acme.",
        [c("https://g2.com/b", "g2.com", "g2.com"), c("https://capterra.com/x", "capterra.com", "capterra.com")],
        OPENAI_NEW),
    Ans("openai", "Initech is an option.",
        [c("https://capterra.com/y", "capterra.com", "capterra.com"),
         c("https://reddit.com/r/x", "reddit.com", "reddit.com")], OPENAI_NEW),
    Ans("openai", "No tracked brand is named here.", [], OPENAI_NEW),
    Ans("openai", "Acme Acme", [c("https://acme.com/e", "acme.com", "acme.com")], OPENAI_NEW, status="error"),
    Ans("gemini", "I couldn't find Acme. Globex is popular.",
        [c(f"https://{REDIRECT}/grounding-api-redirect/abc", REDIRECT, "google.com"),
         c("https://globex.io/", "globex.io", "globex.io"),
         c("https://techradar.com/best", "techradar.com", "techradar.com")], GEMINI),
    Ans("gemini", "Acme and Initech both work.",
        [c("https://docs.acme.com/start", "docs.acme.com", "acme.com"),
         c("https://en.wikipedia.org/wiki/X", "en.wikipedia.org", "wikipedia.org")], GEMINI),
    Ans("gemini", "Nothing relevant here.", [], GEMINI),
]
BATCH1 = [
    Ans("openai", "Some tools exist.", [c("https://g2.com/old", "g2.com", "g2.com")], OPENAI_OLD),
    Ans("openai", "Other tools exist.", [c("https://g2.com/old2", "g2.com", "g2.com")], OPENAI_OLD),
    Ans("gemini", "Tools.", [c("https://capterra.com/old", "capterra.com", "capterra.com")], GEMINI),
]


async def _seed(store: Store) -> tuple[uuid.UUID, uuid.UUID]:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme", domains=("acme.com",), is_own=True),
                        NewBrand(P, "Globex", domains=("globex.io",)), NewBrand(P, "Initech")])
    b1, _ = await seed_batch(store, P, "daily:1", datetime(2026, 11, 1, tzinfo=UTC), BATCH1)
    b2, _ = await seed_batch(store, P, "daily:2", datetime(2026, 11, 2, tzinfo=UTC), BATCH2)
    await score(store.pool)
    return b1, b2


async def test_metrics_of_a_seeded_batch_match_the_hand_computed_values(store: Store) -> None:
    _, b2 = await _seed(store)
    report = await compute_report(store, project=P)  # the last batch by default
    assert report.batch_id == b2
    pm = report.projects[P]
    assert pm.answers == 7  # o1-o4, g1-g3; the error is not an answer
    assert pm.platforms == {"gemini": 3, "openai": 4}
    assert pm.cited_sources == 10  # o1 2, o2 2, o3 2, g1 2 (redirect not counted), g2 2
    assert list(pm.brands) == ["Acme", "Globex", "Initech"]  # own first, then by visibility

    acme, globex, initech = pm.brands["Acme"], pm.brands["Globex"], pm.brands["Initech"]
    # visibility = answers mentioning / successful answers
    assert (acme.mentions, globex.mentions, initech.mentions) == (3, 3, 2)
    assert acme.visibility == pytest.approx(3 / 7)
    assert initech.visibility == pytest.approx(2 / 7)
    # Wilson 95% for 3/7: centre (3/7 + 1.9600²/14) / (1 + 1.9600²/7) = 0.45388, half-width 0.29566
    assert acme.visibility_ci is not None
    assert acme.visibility_ci.low == pytest.approx(0.15822, abs=1e-4)
    assert acme.visibility_ci.high == pytest.approx(0.74954, abs=1e-4)
    # share of voice: 3 + 3 + 2 = 8 brand-answers
    assert acme.share_of_voice == pytest.approx(3 / 8)
    assert initech.share_of_voice == pytest.approx(2 / 8)
    # average rank over answers mentioning the brand
    assert acme.avg_rank == pytest.approx((1 + 2 + 1) / 3)
    assert globex.avg_rank == pytest.approx((2 + 1 + 1) / 3)
    assert initech.avg_rank == pytest.approx((1 + 2) / 2)
    # citation share: acme.com (o1) + docs.acme.com (g2) = 2 of 10; globex.io (g1) = 1 of 10 (o1's is retrieved)
    assert acme.citation_share == pytest.approx(0.2)
    assert globex.citation_share == pytest.approx(0.1)
    assert initech.citation_share == pytest.approx(0.0)
    assert (acme.cited_answers, globex.cited_answers, globex.retrieved_answers) == (2, 1, 1)
    assert acme.occurrences == 3

    oa, gm = acme.platforms["openai"], acme.platforms["gemini"]
    assert (oa.answers, oa.mentions) == (4, 2)
    assert oa.visibility == pytest.approx(0.5)
    assert oa.share_of_voice == pytest.approx(2 / 5)  # openai: Acme 2 + Globex 2 + Initech 1
    assert oa.avg_rank == pytest.approx(1.5)
    assert oa.citation_share == pytest.approx(1 / 6)  # openai cited: 2 + 2 + 2
    assert gm.visibility == pytest.approx(1 / 3)
    assert gm.share_of_voice == pytest.approx(1 / 3)
    assert gm.avg_rank == pytest.approx(1.0)
    assert gm.citation_share == pytest.approx(1 / 4)  # gemini cited: g1 2 (not the redirect) + g2 2
    assert globex.platforms["gemini"].citation_share == pytest.approx(1 / 4)
    assert initech.platforms["gemini"].avg_rank == pytest.approx(2.0)

    # top cited sites: acme.com, capterra.com, g2.com 2 each; then globex.io, reddit, techradar, wikipedia 1 each
    assert [(d.domain, d.citations, d.brand) for d in pm.top_domains] == [
        ("acme.com", 2, "Acme"), ("capterra.com", 2, None), ("g2.com", 2, None), ("globex.io", 1, "Globex"),
        ("reddit.com", 1, None), ("techradar.com", 1, None), ("wikipedia.org", 1, None)]
    assert pm.top_domains[0].share == pytest.approx(0.2)
    assert all(d.domain != "google.com" and REDIRECT not in d.domain for d in pm.top_domains)
    # gaps: cited with a competitor and never with Acme (g1's Acme is negated, so techradar is a gap)
    assert [(g.domain, g.answers, g.competitors) for g in pm.citation_gaps] == [
        ("reddit.com", 1, ("Initech",)), ("techradar.com", 1, ("Globex",))]
    assert pm.unscored_answers == 0 and pm.stale_answers == 0


async def test_change_against_the_previous_batch_and_the_model_mark(store: Store) -> None:
    b1, b2 = await _seed(store)
    report = await compute_report(store, project=P, batch=b2)
    assert report.previous is not None and report.previous.batch_id == b1
    # openai reported another model; search ran in 2/2 and 1/1 before, 3/4 and 2/3 now (not significant)
    assert report.marks == (f"openai: model {OPENAI_OLD} -> {OPENAI_NEW}",)
    change = report.projects[P].brands["Acme"].changes["visibility"]
    # Acme: 0/3 before, 3/7 now; an expected count below 5, so Fisher's exact test on [[0, 3], [3, 4]]:
    # tables with margins (3, 7 | 3): P(x=0..3) = 35, 63, 21, 1 / 120; p = (35 + 21 + 1) / 120 = 0.475
    assert (change.before, change.after) == (0.0, pytest.approx(3 / 7))
    assert change.method == "fisher"
    assert change.p_value == pytest.approx(57 / 120)
    assert not change.significant and not change.comparable and not change.flagged
    # the trend: both batches, oldest first; batch 2 marked
    points = report.projects[P].trend.points
    assert [p.batch_id for p in points] == [b1, b2]
    assert points[0].brands["Acme"].visibility == 0.0 and points[1].marks == report.marks


async def test_json_has_the_contract_shape(store: Store) -> None:
    _, b2 = await _seed(store)
    j = (await compute_report(store, project=P)).to_json()
    assert j["batch_id"] == str(b2)
    proj = j["projects"][str(P)]
    assert proj["answers"] == 7
    acme = proj["brands"]["Acme"]
    assert acme["own"] is True and acme["mentions"] == 3
    assert acme["visibility"] == 0.4286 and acme["visibility_ci"] == [0.1582, 0.7495]
    assert acme["share_of_voice"] == 0.375 and acme["avg_rank"] == 1.3333 and acme["citation_share"] == 0.2
    assert acme["platforms"]["openai"] == {**acme["platforms"]["openai"], "answers": 4, "visibility": 0.5,
                                           "share_of_voice": 0.4, "avg_rank": 1.5, "citation_share": 0.1667}
    # avg_rank is null where the brand is never mentioned
    assert proj["brands"]["Initech"]["platforms"]["openai"]["avg_rank"] == 1.0
    assert proj["brands"]["Globex"]["platforms"]["gemini"]["avg_rank"] == 1.0


async def test_avg_rank_is_null_without_mentions_and_prompt_batches_are_no_trend_point(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme", is_own=True), NewBrand(P, "Umbrella")])
    b1, _ = await seed_batch(store, P, "daily:1", datetime(2026, 11, 1, tzinfo=UTC),
                             [Ans("openai", "Acme only.", model=OPENAI_NEW)])
    await seed_batch(store, P, "prompt:x", datetime(2026, 11, 3, tzinfo=UTC),
                     [Ans("openai", "Umbrella only.", model=OPENAI_NEW)], trigger="prompt")
    await score(store.pool)
    report = await compute_report(store, project=P)
    assert report.batch_id == b1  # the single-prompt batch is not "the last batch"
    umbrella = report.to_json()["projects"][str(P)]["brands"]["Umbrella"]
    assert umbrella["visibility"] == 0.0 and umbrella["avg_rank"] is None
    assert report.previous is None and report.marks == ()


async def test_nothing_to_report(store: Store) -> None:
    with pytest.raises(NoBatch):
        await compute_report(store, project=P)


async def test_a_real_change_between_comparable_batches_is_flagged_and_in_the_headline(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme", is_own=True), NewBrand(P, "Globex")])
    before = [Ans("openai", "Globex leads.", model=OPENAI_NEW) for _ in range(20)]
    after = [Ans("openai", "Acme leads, then Globex.", model=OPENAI_NEW) for _ in range(15)] + [
        Ans("openai", "Globex leads.", model=OPENAI_NEW) for _ in range(5)]
    await seed_batch(store, P, "d1", datetime(2026, 11, 1, tzinfo=UTC), before)
    await seed_batch(store, P, "d2", datetime(2026, 11, 2, tzinfo=UTC), after)
    await score(store.pool)
    report = await compute_report(store, project=P)
    assert report.marks == ()
    vis = report.projects[P].brands["Acme"].changes["visibility"]
    # 0/20 -> 15/20: pooled 15/40, expected 20 * 0.375 = 7.5 >= 5: z-test;
    # se = sqrt(0.375 * 0.625 * (2/20)) = 0.153093, z = 0.75 / 0.153093 = 4.89898, p = erfc(4.89898 / sqrt 2)
    assert vis.method == "z" and vis.p_value == pytest.approx(9.6e-7, rel=0.01)
    assert vis.flagged
    globex = report.projects[P].brands["Globex"].changes["visibility"]
    assert (globex.before, globex.after) == (1.0, 1.0) and not globex.significant
    head = report.headline()["projects"][str(P)]
    assert head["brands"]["Acme"]["visibility"] == 0.75
    assert {(c["brand"], c["platform"], c["metric"]) for c in head["flagged_changes"]} == {
        ("Acme", None, "visibility"), ("Acme", "openai", "visibility"),
        # share of voice: 0/20 -> 15/35 of the brand-answers
        ("Acme", None, "share_of_voice"), ("Acme", "openai", "share_of_voice"),
        ("Globex", None, "share_of_voice"), ("Globex", "openai", "share_of_voice")}
