"""Answers that parse but carry what PostgreSQL refuses: every paid answer still ends somewhere, and one
bad row never fails its neighbours in a write group."""

from __future__ import annotations

import pytest

from prompt_analyzer.config import PLATFORMS

from ..harness import Env, platform_config

pytestmark = pytest.mark.faults


async def test_nul_in_answer_text_titles_and_raw_json_is_stored(env: Env) -> None:
    env.write_config(platform_config(**{p: {"max_concurrency": 20} for p in PLATFORMS}))
    texts = [f"hostile {i} [[sim:fault=nul]]" for i in range(6)] + [f"plain {i}" for i in range(20)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "nul", "--json")
    assert r.code == 0, r.stderr[-3000:]
    assert r.json()["status"] == "completed"
    rows = await env.rows()
    assert len(rows) == len(texts) * len(PLATFORMS)
    assert {x["status"] for x in rows} == {"success"}
    hostile = [x for x in rows if x["tracked_text"].startswith("hostile")]
    # the text after the NUL is kept; the NUL itself is replaced
    assert all("after a NUL" in x["response_text"] and "\x00" not in x["response_text"] for x in hostile)
    assert all(x["metadata"]["raw"]["sim_note"].startswith("raw ") for x in hostile)
    titles = await env.store.fetchall(
        "SELECT c.title FROM ai_response_citations c JOIN ai_responses r ON r.id = c.ai_response_id "
        "JOIN prompt_tracking p ON p.id = r.prompt_tracking_id WHERE p.prompt_text LIKE 'hostile%%' "
        "AND c.title LIKE '%%after a NUL%%'")
    assert titles, "citation titles with a NUL were not stored"


async def test_unwritable_answer_fails_alone_and_the_rest_commit(env: Env) -> None:
    """Token counts beyond PostgreSQL's integer: that row becomes an error with its reason; its write group's
    other answers commit, the batch finishes, nothing stays processing."""
    env.write_config(platform_config(**{p: {"max_concurrency": 30} for p in PLATFORMS}))
    texts = ["huge [[sim:openai:fault=hugeusage]]"] + [f"neighbour {i}" for i in range(40)]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "huge", "--json")
    assert r.code == 1, r.stderr[-3000:]
    out = r.json()
    assert out["status"] == "completed_with_errors"
    rows = await env.rows()
    assert not [x for x in rows if x["status"] == "processing"]
    bad = [x for x in rows if x["status"] != "success"]
    assert [(x["tracked_text"], x["platform"]) for x in bad] == [("huge [[sim:openai:fault=hugeusage]]", "openai")]
    assert bad[0]["error_class"] == "unwritable"
    assert "out of range" in bad[0]["error_message"]
    assert sum(1 for x in rows if x["status"] == "success") == len(texts) * len(PLATFORMS) - 1
    batch = await env.store.fetchone("SELECT status FROM analysis_batches WHERE idempotency_key = 'huge'")
    assert batch and batch["status"] == "completed_with_errors"
