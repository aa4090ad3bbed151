"""Scoring stored answers, and rescoring history after a brand's aliases change (no API call anywhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.scoring import score
from prompt_analyzer.db import Store
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand

from .seed import Ans, Cite, seed_batch

P = uuid.UUID("44444444-4444-4444-8444-444444444444")
OTHER = uuid.UUID("55555555-5555-4555-8555-555555555555")

ANSWERS = [
    Ans("openai", "Roadrunner Supply is the best.", [Cite("https://acme.com/x", "acme.com", "acme.com")]),  # a1
    Ans("openai", "Acme and Globex are fine."),  # a2: Acme 1, Globex 2
    Ans("claude", "Globex only."),  # a3: Globex 1
    Ans("claude", "Globex first, then Acme."),  # a4: Globex 1, Acme 2
]


async def _mentions(store: Store) -> dict[tuple[uuid.UUID, str], tuple[int, int | None, bool]]:
    rows = await store.fetchall(
        """SELECT m.ai_response_id, b.name, m.mention_count, m.rank, m.cited
           FROM ai_response_mentions m JOIN tracked_brands b ON b.id = m.brand_id""")
    return {(r["ai_response_id"], r["name"]): (r["mention_count"], r["rank"], r["cited"]) for r in rows}


async def test_rescore_after_an_alias_change_records_what_changed(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme", domains=("acme.com",), is_own=True), NewBrand(P, "Globex")])
    batch, (a1, a2, a3, a4) = await seed_batch(store, P, "daily:1", datetime(2026, 11, 1, tzinfo=UTC), ANSWERS)

    first = await score(store.pool, batch_id=batch)
    assert (first.answers, first.first_time, first.rescored) == (4, 4, 0)
    assert await _mentions(store) == {
        (a1, "Acme"): (0, None, True),  # not named, but its domain is cited
        (a2, "Acme"): (1, 1, False), (a2, "Globex"): (1, 2, False),
        (a3, "Globex"): (1, 1, False),
        (a4, "Globex"): (1, 1, False), (a4, "Acme"): (1, 2, False),
    }
    before = (await compute_report(store, project=P)).projects[P]
    assert before.brands["Acme"].mentions == 2 and before.stale_answers == 0

    # The alias the answers used all along: history is stale until rescored.
    await a.update_brand(P, "acme", add_aliases=["Roadrunner Supply"])
    stale = (await compute_report(store, project=P)).projects[P]
    assert stale.stale_answers == 4 and stale.brands["Acme"].mentions == 2  # figures as last scored

    again = await score(store.pool)  # all of history
    assert (again.answers, again.first_time, again.rescored, again.changed) == (4, 0, 4, 1)
    assert {n: (c.gained, c.lost) for n, c in again.brands.items()} == {"Acme": (1, 0)}
    assert (await _mentions(store))[(a1, "Acme")] == (1, 1, True)
    after = (await compute_report(store, project=P)).projects[P]
    assert after.brands["Acme"].mentions == 3 and after.stale_answers == 0

    # The record of both scorings: which brand definitions, what changed.
    runs = await a.score_runs()
    assert [(r.trigger, r.answers, r.rescored, r.changed) for r in runs] == [("score", 4, 4, 1), ("score", 4, 0, 4)]
    assert runs[0].changes == {"Acme": {"gained": 1, "lost": 0}}
    snap = await store.fetchone("SELECT brands FROM mention_score_runs WHERE id = %s", (runs[0].id,))
    assert snap is not None
    acme = next(b for b in snap["brands"][str(P)]["brands"] if b["name"] == "Acme")
    assert acme["aliases"] == ["Roadrunner Supply"]

    # Nothing changed since: a rescore is a no-op that says so.
    idle = await score(store.pool)
    assert (idle.rescored, idle.changed) == (0, 0)

    # Removing Globex: its rows go with it, and Acme moves up to rank 1 in a4.
    assert len(await a.remove_brand(P, "Globex")) == 1
    removed = await score(store.pool)
    assert (removed.rescored, removed.changed) == (4, 1) and removed.brands == {}
    assert (await _mentions(store))[(a4, "Acme")] == (1, 1, False)
    assert (a3, "Globex") not in await _mentions(store)


async def test_scoring_a_batch_leaves_other_batches_and_projects_alone(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme"), NewBrand(OTHER, "Acme")])
    b1, (x,) = await seed_batch(store, P, "k1", datetime(2026, 11, 1, tzinfo=UTC), [Ans("openai", "Acme.")])
    b2, (y,) = await seed_batch(store, OTHER, "k2", datetime(2026, 11, 2, tzinfo=UTC), [Ans("openai", "Acme.")])
    r = await score(store.pool, batch_id=b1)
    assert r.answers == 1
    rows = await store.fetchall("SELECT ai_response_id FROM ai_response_mentions")
    assert [row["ai_response_id"] for row in rows] == [x]
    # since: batches started on or after the date only
    r2 = await score(store.pool, since=datetime(2026, 11, 2, tzinfo=UTC))
    assert r2.answers == 1 and r2.first_time == 1
    # a project's brands match only that project's answers
    brands = {row["ai_response_id"]: row["project_id"] for row in await store.fetchall(
        "SELECT m.ai_response_id, b.project_id FROM ai_response_mentions m JOIN tracked_brands b ON b.id = m.brand_id")}
    assert brands == {x: P, y: OTHER}
    assert b2 != b1
