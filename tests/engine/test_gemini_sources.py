"""Gemini's sources as `analyze run` records them: the pages behind the grounding redirects."""

from __future__ import annotations

import json
import uuid

from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.db.migrate import available
from prompt_analyzer.providers.citations import normalize_url
from prompt_analyzer.providers.redirects import is_redirect
from prompt_analyzer.simulator.content import make_answer

from ..harness import Env


async def test_run_records_the_pages_and_keeps_the_redirects(env: Env) -> None:
    good, broken = "best crm for a bakery", "best crm for a florist [[sim:redirect=404]]"
    await env.add_prompts([good, broken])
    r = await env.analyze("run", "--key", "g1", "--platform", "gemini", "--json")
    assert r.code == 0, r.stderr
    rows = await env.store.fetchall(
        """SELECT p.prompt_text, c.url, c.domain, c.site, c.title, c.metadata
           FROM ai_response_citations c JOIN ai_responses r ON r.id = c.ai_response_id
           JOIN prompt_tracking p ON p.id = r.prompt_tracking_id WHERE r.platform = 'gemini'
           ORDER BY p.prompt_text, c.position""")
    seed = env.sim.config.seed
    for prompt in (good, broken):
        mine = [x for x in rows if x["prompt_text"] == prompt]
        sources = make_answer(prompt, "gemini", seed).sources
        assert len(mine) == len(sources)
        for x in mine:
            # The redirect host (here the simulator's address) is never a citation's domain or site.
            assert x["domain"] != "127.0.0.1" and x["site"] != "127.0.0.1"
            assert is_redirect(x["metadata"]["redirect"])
        pages = {normalize_url(s.url): s.domain for s in sources}
        resolved = [x for x in mine if x["metadata"]["resolved"]]
        assert all(pages[x["url"]] == x["domain"] for x in resolved)
        if prompt == good:
            assert len(resolved) == len(sources)
        else:  # the first source's link answered 404: kept as the redirect, its domain from the title
            (bad,) = [x for x in mine if not x["metadata"]["resolved"]]
            assert bad["url"] == bad["metadata"]["redirect"] and bad["metadata"]["status"] == 404
            assert bad["domain"] == sources[0].domain == bad["title"]


async def test_migration_moves_old_redirects_out_of_the_domains(store: Store) -> None:
    """Rows written before 0009 have the redirect host as domain; 0009's statements fix them (and are
    safe to run again)."""
    await store.import_prompts([NewPrompt(uuid.UUID(int=7), "p")])
    batch, _ = await store.create_batch(key="m9", trigger="manual", platforms=["gemini"])
    (pair,) = await store.pending_pairs(batch.id, "gemini", after=None, limit=10)
    rid = await store.claim(pair, owner="t", lease_s=60)
    link = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQabc"
    async with store.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO ai_response_citations (ai_response_id, position, url, domain, title, cited, site)
               VALUES (%(r)s, 1, %(l)s || '1', 'vertexaisearch.cloud.google.com', 'WWW.Weather.gov', true, 'g.com'),
                      (%(r)s, 2, %(l)s || '2', 'vertexaisearch.cloud.google.com', 'Weather for SF', true, 'google.com'),
                      (%(r)s, 3, 'https://example.com/', 'example.com', 'example.com', false, 'example.com')""",
            {"r": rid, "l": link},
        )
    (m,) = [m for m in available() if m.version == 9]
    for _ in range(2):
        async with store.pool.connection() as conn:
            await conn.execute(m.sql)
    rows = await store.fetchall("SELECT url, domain, site, metadata FROM ai_response_citations ORDER BY position")
    assert [(x["domain"], x["site"], x["metadata"]) for x in rows] == [
        ("weather.gov", None, {"redirect": link + "1", "resolved": False}),
        ("", None, {"redirect": link + "2", "resolved": False}),
        ("example.com", "example.com", {}),
    ]
    assert json.dumps(rows[2]["metadata"]) == "{}"
