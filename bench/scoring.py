"""6. Visibility analytics: how fast mentions are found, scored into the database, and reported.

Seeds one batch of N successful answers (the simulator's deterministic answer texts, which name their
sources' sites, with tracked brands woven in, 3-6 citations each) into a fresh database, tracks 12 brands,
then measures, in this process:

* the matcher alone (``Matcher.mentions`` over every answer's text and sources): answers/s;
* ``analyze score`` 's work (``scoring.score``: read, match, replace the mention rows, record): answers/s;
* ``compute_report`` for the batch (trend, changes, domains): seconds.

Usage: .venv/bin/python bench/scoring.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import drop_database, fresh_database, machine, print_machine, save, say
from prompt_analyzer.analytics.mentions import BrandTerms, Matcher, Source
from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.scoring import score
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.simulator.content import make_answer

PROJECT = uuid.UUID("6e000000-0000-4000-8000-000000000006")
BRANDS = [("Acme", ["ACME Corp"], ["acme.com"], True), ("Globex", ["Globex Corporation"], ["globex.io"], False),
          ("Initech", [], ["initech.com"], False), ("Zoom", [], ["zoom.us"], False),
          ("Notion", [], ["notion.so"], False),
          ("Wikipedia", [], ["wikipedia.org"], False), ("Reuters", [], ["reuters.com"], False),
          ("G2", ["G2 Crowd"], ["g2.com"], False), ("Capterra", [], ["capterra.com"], False),
          ("Umbrella", ["Umbrella Corp"], [], False), ("Müller Analytik", [], [], False),
          ("华为", ["Huawei"], [], False)]
EXTRA = ["Acme is often recommended.", "Globex and Initech compete on price.", "I couldn't find Umbrella in reviews.",
         "**Zoom** – video calls.", "Many teams use Notion for docs.", "Huawei ships worldwide.", ""]


def _answers(n: int) -> list[tuple[str, str, list[tuple[str, str, str, bool]]]]:
    rng = random.Random(6)
    out = []
    for i in range(n):
        platform = ("openai", "gemini", "claude", "perplexity")[i % 4]
        a = make_answer(f"benchmark prompt {i}", platform, seed=1)
        text = " ".join(s.text for s in a.sentences) + " " + " ".join(rng.sample(EXTRA, 2))
        cites = [(s.url, s.domain, s.domain, j < len(a.sources) - 1) for j, s in enumerate(a.sources)]
        out.append((platform, text, cites))
    return out


async def _seed(url: str, answers: list[tuple[str, str, list[tuple[str, str, str, bool]]]]) -> uuid.UUID:
    pool = await open_pool(resolve_target(url), max_size=4)
    try:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute("""INSERT INTO analysis_batches (idempotency_key, trigger, status)
                                        VALUES ('bench:scoring', 'manual', 'completed') RETURNING id""")
            row = await cur.fetchone()
            assert row is not None
            batch = row["id"]
            n = len(answers)
            prompts = [uuid.uuid4() for _ in range(n)]
            jobs = [uuid.uuid4() for _ in range(n)]
            resps = [uuid.uuid4() for _ in range(n)]
            await conn.execute(
                """INSERT INTO prompt_tracking (id, project_id, prompt_text)
                   SELECT id, %s, 'benchmark prompt' FROM unnest(%s::uuid[]) AS t(id)""", (PROJECT, prompts))
            await conn.execute(
                """INSERT INTO analysis_jobs (id, batch_id, project_id, prompt_tracking_id, status, total_platforms)
                   SELECT j, %s, %s, p, 'completed', 1 FROM unnest(%s::uuid[], %s::uuid[]) AS t(j, p)""",
                (batch, PROJECT, jobs, prompts))
            await conn.execute(
                """INSERT INTO ai_responses (id, analysis_job_id, prompt_tracking_id, project_id, platform,
                                            model_version, prompt_text, response_text, status)
                   SELECT r, j, p, %s, pl, pl || '-model', 'benchmark prompt', txt, 'success'
                   FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::text[]) AS t(r, j, p, pl, txt)""",
                (PROJECT, resps, jobs, prompts, [a[0] for a in answers], [a[1] for a in answers]))
            cr = [(resps[i], pos, c) for i, a in enumerate(answers) for pos, c in enumerate(a[2], start=1)]
            await conn.execute(
                """INSERT INTO ai_response_citations (ai_response_id, position, url, domain, site, cited)
                   SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::text[], %s::text[], %s::bool[])
                   ON CONFLICT DO NOTHING""",
                ([r for r, _, _ in cr], [p for _, p, _ in cr], [c[0] for _, _, c in cr], [c[1] for _, _, c in cr],
                 [c[2] for _, _, c in cr], [c[3] for _, _, c in cr]))
        await AnalyticsStore(pool).add_brands(
            [NewBrand(PROJECT, n, tuple(a), tuple(d), own) for n, a, d, own in BRANDS])
        return batch
    finally:
        await pool.close()


async def _measure(url: str, n: int) -> dict[str, Any]:
    answers = _answers(n)
    t = time.perf_counter()
    batch = await _seed(url, answers)
    seed_s = time.perf_counter() - t
    say(f"seeded {n} answers in {seed_s:.1f} s")

    matcher = Matcher([BrandTerms(uuid.uuid4(), name, tuple(a), tuple(d)) for name, a, d, _ in BRANDS])
    t = time.perf_counter()
    found = 0
    for _, text, cites in answers:
        found += sum(1 for m in matcher.mentions(text, [Source(c[1], c[3]) for c in cites]) if m.mention_count)
    match_s = time.perf_counter() - t
    say(f"matcher: {n / match_s:,.0f} answers/s ({match_s * 1e6 / n:.0f} µs per answer), {found} mentions")

    pool = await open_pool(resolve_target(url), max_size=4)
    try:
        t = time.perf_counter()
        first = await score(pool, batch_id=batch)
        score_s = time.perf_counter() - t
        say(f"score (first): {first.answers / score_s:,.0f} answers/s ({score_s:.2f} s), {first.mentions} mentions")
        t = time.perf_counter()
        again = await score(pool, batch_id=batch)
        rescore_s = time.perf_counter() - t
        say(f"score (again, nothing changed): {again.answers / rescore_s:,.0f} answers/s ({rescore_s:.2f} s)")
        t = time.perf_counter()
        report = await compute_report(pool, batch=batch)
        report_s = time.perf_counter() - t
        say(f"compute_report: {report_s:.2f} s for {report.projects[PROJECT].answers} answers")
    finally:
        await pool.close()
    return {
        "answers": n, "brands": len(BRANDS), "text_chars_mean": round(sum(len(a[1]) for a in answers) / n),
        "seed_s": round(seed_s, 2),
        "matcher": {"seconds": round(match_s, 3), "answers_per_s": round(n / match_s),
                    "us_per_answer": round(match_s * 1e6 / n, 1), "mentions": found},
        "score_first": {"seconds": round(score_s, 3), "answers_per_s": round(first.answers / score_s),
                        "mentions": first.mentions},
        "score_again": {"seconds": round(rescore_s, 3), "answers_per_s": round(again.answers / rescore_s),
                        "changed": again.changed},
        "compute_report_s": round(report_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    m = machine()
    print_machine(m)
    url, name = fresh_database("scoring")
    try:
        result = asyncio.run(_measure(url, args.n))
    finally:
        drop_database(name)
    save("scoring", {"machine": m, **result})


if __name__ == "__main__":
    main()
