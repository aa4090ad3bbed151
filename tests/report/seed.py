"""Seeded batches for the report renderers, with figures worked out by hand.

``seed_two_batches``: the analytics tests' seed (tests/analytics/test_metrics.py documents every figure),
two batches of project P; batch 2 is served by another openai model than batch 1, so its changes are not
comparable.  By hand, batch 2 (7 answers: openai 4, gemini 3):

=========  ========  ===============  =============  ========  ==============
brand      mentions  visibility       share of voice  avg rank  citation share
=========  ========  ===============  =============  ========  ==============
Acme (own) 3/7       43% (16-75%)     3/8 = 38%      4/3 = 1.3 2/10 = 20%
Globex     3/7       43% (16-75%)     3/8 = 38%      4/3 = 1.3 1/10 = 10%
Initech    2/7       29% (8-64%)      2/8 = 25%      3/2 = 1.5 0/10 = 0%
=========  ========  ===============  =============  ========  ==============

Wilson 95% for 2/7: centre (2/7 + 1.96²/14) / (1 + 1.96²/7) = 0.3616, half-width 0.2794: 8%-64%.

``seed_flagged_change``: project Q, two batches on the same model, 20 answers each: "Zeta" (own) named in
0 of 20, then in 15 of 20 (Fisher's exact test p < 1e-6: flagged, +75 points); "=Evil Corp", a name a
spreadsheet would run as a formula, is tracked and never named.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prompt_analyzer.analytics.scoring import score
from prompt_analyzer.db import Store
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand
from tests.analytics.seed import Ans, seed_batch
from tests.analytics.test_metrics import P
from tests.analytics.test_metrics import _seed as seed_two_batches  # the analytics tests' seed, as is

Q = uuid.UUID("44444444-4444-4444-8444-444444444444")
MODEL = "gpt-4.1-mini-2025-06-01"

__all__ = ["MODEL", "P", "Q", "seed_flagged_change", "seed_two_batches"]


async def seed_flagged_change(store: Store) -> tuple[uuid.UUID, uuid.UUID]:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(Q, "Zeta", domains=("zeta.example",), is_own=True), NewBrand(Q, "=Evil Corp")])

    def answers(zeta: int) -> list[Ans]:
        out = []
        for i in range(20):
            out.append(Ans("openai", "Zeta is good." if i < zeta else "Nothing to see.", model=MODEL))
        return out

    b1, _ = await seed_batch(store, Q, "daily:a", datetime(2026, 11, 5, tzinfo=UTC), answers(0))
    b2, _ = await seed_batch(store, Q, "daily:b", datetime(2026, 11, 6, tzinfo=UTC), answers(15))
    await score(store.pool)
    return b1, b2
