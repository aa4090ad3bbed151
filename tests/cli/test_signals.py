"""SIGINT / SIGTERM by phase: before a batch the command ends, during one the batch stops cleanly,
after it the signal is ignored (the summary prints and the exit code is the batch's).

The subprocess tests hold the `analyze` process at an exact point with real PostgreSQL locks:
a trigger on the batch's final status update waits for an advisory lock the test holds, which lets the
test lock ``ai_responses`` before the batch report reads it; the process is then provably between
"the batch finished" and "the summary is printed" when the signal is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from prompt_analyzer.cli._context import Invocation
from prompt_analyzer.cli._exec import on_signal

from ..harness import Env

GATE = 0x5A7E  # advisory lock key held by the test

INSTALL_GATE = f"""
DROP TRIGGER IF EXISTS pa_test_gate ON analysis_batches;
CREATE OR REPLACE FUNCTION pa_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({GATE});  -- the batch's final status waits for the test
    RETURN NEW;
END $$;
CREATE TRIGGER pa_test_gate AFTER UPDATE OF status ON analysis_batches FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'completed_with_errors') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION pa_test_gate();
"""
REMOVE_GATE = "DROP TRIGGER IF EXISTS pa_test_gate ON analysis_batches; DROP FUNCTION IF EXISTS pa_test_gate();"


async def until(cond: Callable[[], Awaitable[bool]], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not await cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def waiting_on(conn: psycopg.AsyncConnection[Any], where: str) -> bool:
    cur = await conn.execute(f"SELECT count(*) FROM pg_locks WHERE NOT granted AND {where}")  # noqa: S608
    row = await cur.fetchone()
    return bool(row and row[0])


class FakeRunner:
    def __init__(self) -> None:
        self.stops: list[str] = []

    def request_stop(self, reason: str) -> None:
        self.stops.append(reason)


def test_signal_handler_by_phase() -> None:
    inv = Invocation()  # the handler reaches the runner through the invocation it was given
    cancels: list[int] = []
    runner = FakeRunner()
    inv.batch_started(runner)
    on_signal(inv, "SIGTERM", lambda: cancels.append(1))
    on_signal(inv, "SIGINT", lambda: cancels.append(1))
    assert runner.stops == ["SIGTERM", "SIGINT"] and not cancels  # a second signal reaches the runner too

    inv.batch_ended()
    on_signal(inv, "SIGTERM", lambda: cancels.append(1))
    assert not cancels and inv.signal is None and runner.stops == ["SIGTERM", "SIGINT"]  # after the batch: ignored

    inv = Invocation()
    on_signal(inv, "SIGTERM", lambda: cancels.append(1))
    on_signal(inv, "SIGINT", lambda: cancels.append(1))
    assert cancels == [1] and inv.signal == "SIGTERM"  # before the batch: the command ends, once


async def test_signals_after_the_batch_finished_are_ignored(env: Env) -> None:
    await env.add_prompts(["first prompt", "second prompt"])
    gate = await psycopg.AsyncConnection.connect(env.db_url, autocommit=True)
    locker = await psycopg.AsyncConnection.connect(env.db_url)
    proc = None
    try:
        await gate.execute(INSTALL_GATE)
        await gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        proc = await env.start("run", "--key", "sig-after")
        # the runner is setting the batch's final status and waits for the gate
        await until(lambda: waiting_on(gate, f"locktype = 'advisory' AND objid = {GATE}"), "the final status")
        await locker.execute("SET lock_timeout = '20s'")
        await locker.execute("LOCK TABLE ai_responses IN ACCESS EXCLUSIVE MODE")
        await gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        # the batch has finished; the report's first query now waits for the test's table lock
        await until(lambda: waiting_on(gate, "relation = 'ai_responses'::regclass"), "the batch report")
        row = await (await gate.execute(
            "SELECT status FROM analysis_batches WHERE idempotency_key = 'sig-after'")).fetchone()
        assert row == ("completed",)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        await asyncio.sleep(0.5)
        if proc.returncode is not None:
            out, err = await proc.communicate()
            raise AssertionError(f"a signal after the batch finished ended the process ({proc.returncode}): "
                                 f"{err.decode()[-1500:]}")
        await locker.commit()
        # and through the summary, the hooks and the exit: every signal is ignored
        deadline = time.monotonic() + 60
        while proc.returncode is None and time.monotonic() < deadline:
            # os.kill, not proc.send_signal: that polls first, and a poll landing as the process exits reaps
            # it behind asyncio's child watcher, which then reports exit status 255.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            await asyncio.sleep(0.002)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        text = out.decode() + err.decode()
        assert "before the batch started" not in text, text
        assert proc.returncode == 0, text
        assert "batch sig-after completed: 2/2 prompts completed" in out.decode(), text
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await locker.rollback()
        await locker.close()
        await gate.execute(REMOVE_GATE)
        await gate.close()


async def test_a_signal_before_the_batch_started_ends_the_command(env: Env) -> None:
    await env.add_prompts(["never asked"])
    locker = await psycopg.AsyncConnection.connect(env.db_url)
    proc = None
    try:
        await locker.execute("LOCK TABLE prompt_tracking IN ACCESS EXCLUSIVE MODE")
        proc = await env.start("run", "--key", "sig-before")
        await until(lambda: waiting_on(locker, "relation = 'prompt_tracking'::regclass"), "the batch's creation")
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 143, err.decode()
        assert "interrupted by SIGTERM before the batch started; nothing was called" in err.decode()
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await locker.rollback()
        await locker.close()
    assert await env.rows() == []
    assert not any((await env.sim.stats())["answered"].values())
