"""The analytics store against a real PostgreSQL: brand rules the database enforces with the store, cascades."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from prompt_analyzer.analytics.scoring import score
from prompt_analyzer.db import Store
from prompt_analyzer.db.analytics import AnalyticsStore, BrandConflict, NewBrand
from tests.analytics.seed import Ans, seed_batch

P = uuid.UUID("77777777-7777-4777-8777-777777777777")
Q = uuid.UUID("88888888-8888-4888-8888-888888888888")


async def test_names_and_aliases_are_unique_per_project(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    [acme] = await a.add_brands([NewBrand(P, "Acme", ("ACME Corp",), ("acme.com",), is_own=True)])
    assert (acme.name, acme.aliases, acme.domains, acme.is_own) == ("Acme", ["ACME Corp"], ["acme.com"], True)
    for bad in (NewBrand(P, "ACME"), NewBrand(P, "Acme Labs", ("acme corp",)), NewBrand(P, "acme corp")):
        with pytest.raises(BrandConflict):
            await a.add_brands([bad])
    # all or nothing: a conflict in the second brand leaves the first one out too
    with pytest.raises(BrandConflict):
        await a.add_brands([NewBrand(P, "Globex"), NewBrand(P, "Initech", ("globex",))])
    assert [b.name for b in await a.list_brands(P)] == ["Acme"]
    # another project may track the same name; the unique index backs the rule
    await a.add_brands([NewBrand(Q, "Acme")])
    with pytest.raises(psycopg.errors.UniqueViolation):
        await store.fetchone("INSERT INTO tracked_brands (project_id, name) VALUES (%s, 'acme') RETURNING id", (P,))
    # a name two projects track needs the project to be removed
    assert len(await a.remove_brand(None, "acme")) == 2
    assert [b.project_id for b in await a.list_brands()] == [P, Q]
    assert [b.name for b in await a.remove_brand(Q, "ACME")] == ["Acme"]


async def test_update_checks_aliases_against_other_brands(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme", ("ACME Corp",)), NewBrand(P, "Globex")])
    with pytest.raises(BrandConflict):
        await a.update_brand(P, "Acme", add_aliases=["GLOBEX"])
    row = await a.update_brand(P, "acme", add_aliases=["Roadrunner"], drop_aliases=["acme corp"],
                               add_domains=["acme.com"], is_own=True)
    assert row is not None and (row.aliases, row.domains, row.is_own) == (["Roadrunner"], ["acme.com"], True)
    assert await a.update_brand(P, "nobody") is None


async def test_concurrent_adds_of_one_alias_let_one_win(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    results = await asyncio.gather(*(a.add_brands([NewBrand(P, f"Brand {i}", ("Shared Alias",))]) for i in range(4)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, BrandConflict) for r in results if isinstance(r, BaseException))


async def test_mentions_go_with_their_answer_and_their_brand(store: Store) -> None:
    a = AnalyticsStore(store.pool)
    await a.add_brands([NewBrand(P, "Acme"), NewBrand(P, "Globex")])
    _, (x, y) = await seed_batch(store, P, "k", datetime(2026, 11, 1, tzinfo=UTC),
                                 [Ans("openai", "Acme and Globex."), Ans("openai", "Acme.")])
    await score(store.pool)

    async def n(table: str) -> int:
        row = await store.fetchone(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table)))
        assert row is not None
        return int(row["n"])

    assert await n("ai_response_mentions") == 3 and await n("ai_response_scores") == 2
    await a.remove_brand(P, "Globex")
    assert await n("ai_response_mentions") == 2
    await store.fetchone("DELETE FROM ai_responses WHERE id = %s RETURNING id", (x,))
    assert await n("ai_response_mentions") == 1 and await n("ai_response_scores") == 1
    assert y
