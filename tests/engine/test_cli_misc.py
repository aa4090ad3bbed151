"""1 MB answers stored intact, through `analyze run`.

(`db migrate` through the CLI is in tests/cli/test_db.py, the unconfigured platform's warning in
tests/cli/test_run.py.)
"""

from __future__ import annotations

from ..harness import Env


async def test_one_megabyte_answer_is_stored_intact(env: Env) -> None:
    env.sim.set_config(env.sim.config.__class__.from_dict({**env.sim.config.to_dict(), "answer_bytes": 1_100_000}))
    await env.add_prompts(["a very long answer please"])
    r = await env.analyze("run", "--key", "big", "--platform", "openai", "--platform", "claude", "--json")
    assert r.code == 0, r.stderr
    rows = await env.rows()
    assert len(rows) == 2
    for row in rows:
        assert len(row["response_text"].encode()) >= 1_000_000
        assert row["status"] == "success"
