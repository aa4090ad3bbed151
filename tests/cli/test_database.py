"""`database(inv)`: the one way a command opens the database; closed however the block ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_analyzer.cli._context import Invocation
from prompt_analyzer.cli.database import database
from prompt_analyzer.config import load_settings


def invocation_on(db_url: str, home: Path) -> Invocation:
    return Invocation(settings=load_settings(None, env={"DATABASE_URL": db_url, "PROMPT_ANALYZER_HOME": str(home)}))


async def test_closed_after_the_block(db_url: str, tmp_path: Path) -> None:
    async with database(invocation_on(db_url, tmp_path)) as db:
        assert await db.store.count_active_prompts() == 0
    assert db.store.pool.closed


async def test_closed_when_the_block_fails(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="inside"):
        async with database(invocation_on(db_url, tmp_path)) as db:
            raise LookupError("inside")
    assert db.store.pool.closed
