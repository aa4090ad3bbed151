"""The queries behind the estimate and the budget: the plan matches what create_batch makes, history and
spend come from successful answers only."""

from __future__ import annotations

import uuid
from decimal import Decimal

from prompt_analyzer.db import NewPrompt, Store, SuccessRecord

PROJECT = uuid.UUID("33333333-3333-3333-3333-333333333333")


async def test_the_plan_of_a_new_batch_is_what_create_batch_makes(store: Store) -> None:
    other = uuid.uuid4()
    await store.import_prompts(
        [NewPrompt(PROJECT, "all platforms"), NewPrompt(PROJECT, "only claude", platforms=["claude"]),
         NewPrompt(PROJECT, "only gemini", platforms=["gemini"]), NewPrompt(other, "other project"),
         NewPrompt(PROJECT, "inactive", is_active=False)]
    )
    plats = ["openai", "claude"]
    for projects, limit in (([PROJECT], None), ([], None), ([], 1)):
        plan = await store.plan_new_batch(platforms=plats, project_ids=projects, limit=limit, history_batches=7)
        batch, _ = await store.create_batch(key=f"k-{uuid.uuid4()}", trigger="manual", platforms=plats,
                                            project_ids=projects, limit=limit)
        counts = await store.pair_counts(batch.id)
        assert {r.platform: r.calls for r in plan} == {k: int(v["total"]) for k, v in counts.items()}
        assert all(r.known == 0 for r in plan)  # no answer yet: no history
    assert (await store.get_batch_by_key("nothing")) is None


async def test_history_spend_and_the_remaining_plan(store: Store) -> None:
    await store.import_prompts([NewPrompt(PROJECT, "x" * 400), NewPrompt(PROJECT, "y" * 40)])
    batch, _ = await store.create_batch(key="b1", trigger="manual", platforms=["openai"])
    pairs = await store.pending_pairs(batch.id, "openai", after=None, limit=10)
    long, short = sorted(pairs, key=lambda p: -len(p.prompt_text))
    rid = await store.claim(long, owner="me", lease_s=60)
    assert rid is not None
    await store.record_success(SuccessRecord(rid, long.job_id, "gpt", "answer", 150, 300, 450, Decimal("0.002"),
                                             1500, {"searches": 1}, []))
    rid2 = await store.claim(short, owner="me", lease_s=60)
    assert rid2 is not None
    await store.record_error(rid2, short.job_id, error_class="budget_exhausted", message="not called",
                             metadata={})
    [hist] = await store.platform_history(["openai"], history_batches=7)
    # one answer: 150 tokens in for a 400-character prompt (100 of its own): overhead 50
    assert (hist.answers, hist.input_overhead, hist.output_tokens, hist.searches) == (1, 50, 300, 1)
    assert hist.latency_ms == 1500
    assert await store.platform_history(["claude"], history_batches=7) == []
    [spend] = await store.batch_spend(batch.id)
    assert (spend.platform, spend.cost) == ("openai", Decimal("0.002"))
    assert await store.budget_exhausted_pairs(batch.id) == 1
    # what is left to call: the short prompt's pair, with no history of its own
    [left] = await store.plan_batch(batch.id, platforms=["openai"], history_batches=7)
    assert (left.calls, left.known, left.unknown_chars) == (1, 0, 40)
    # a new batch over both prompts: the long one is known from its own answer
    [plan] = await store.plan_new_batch(platforms=["openai"], history_batches=7)
    assert (plan.calls, plan.known, plan.known_input, plan.known_output, plan.unknown_chars) == (2, 1, 150, 300, 40)
    # history reaches back only history_batches batches
    await store.create_batch(key="b2", trigger="manual", platforms=["openai"])
    await store.fetchone("UPDATE analysis_batches SET started_at = now() + interval '1 hour' "
                         "WHERE idempotency_key = 'b2' RETURNING 1")
    assert await store.platform_history(["openai"], history_batches=1) == []
