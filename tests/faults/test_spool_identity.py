"""A replay killed (-9) mid-way loses no spooled answer: the next replay takes its work file up.

A real subprocess replays the spool into a real PostgreSQL and SIGKILLs itself right after the first
answer is committed; then a fresh replay must write the rest and leave nothing behind.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from prompt_analyzer.db import NewPrompt, Store, SuccessRecord
from prompt_analyzer.engine.spool import SPOOL_NAME, Spool

pytestmark = pytest.mark.faults

CHILD = """
import asyncio, os, signal, sys
from pathlib import Path
from prompt_analyzer.db import Store
from prompt_analyzer.db.connect import open_pool, resolve_target
from prompt_analyzer.engine.spool import Spool

class Dies(Store):
    async def record_spooled(self, rec):
        written = await super().record_spooled(rec)
        os.kill(os.getpid(), signal.SIGKILL)  # committed, then killed before the replay could tidy up
        return written

async def main():
    store = Dies(await open_pool(resolve_target(sys.argv[1]), max_size=2))
    spool = await Spool.open(Path(sys.argv[2]), store)
    await spool.replay(store)

asyncio.run(main())
"""


async def test_replay_killed_midway_is_resumed_by_the_next_replay(store: Store, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    recs = []
    for i in range(3):
        p = await store.add_prompt(NewPrompt(uuid.uuid4(), f"killed replay {i}"))
        batch, _ = await store.create_batch(key=f"kill-{i}", trigger="manual", platforms=["openai"],
                                            prompt_ids=[p["id"]])
        [pair] = await store.pending_pairs(batch.id, "openai", after=None, limit=1)
        rid = await store.claim(pair, owner="dead", lease_s=3600)
        assert rid is not None
        recs.append(SuccessRecord(rid, pair.job_id, "m", f"answer {i}", 1, 1, 2, Decimal("0.01"), 5, {}, []))
    spool = await Spool.open(home, store)
    for r in recs:
        spool.append(r)

    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, db_url, str(home),
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]

    async def statuses() -> list[str]:
        rows = await store.fetchall("SELECT id, status FROM ai_responses")
        by_id = {r["id"]: r["status"] for r in rows}
        return [by_id[r.response_id] for r in recs]

    assert await statuses() == ["success", "processing", "processing"]
    work = [p.name for p in home.iterdir() if p.name.startswith(SPOOL_NAME + ".replaying-")]
    assert len(work) == 1 and not (home / SPOOL_NAME).exists()  # what the dead replay left

    result = await (await Spool.open(home, store)).replay(store)
    assert (result.written, result.already_written, result.quarantined) == (2, 1, 0)
    assert await statuses() == ["success", "success", "success"]
    assert sorted(p.name for p in home.iterdir()) == ["spool.lock"]
