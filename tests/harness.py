"""Engine tests: real `analyze` subprocesses, a real PostgreSQL and the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from prompt_analyzer.config import PLATFORMS
from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator

PROJECT = uuid.UUID("22222222-2222-2222-2222-222222222222")

FAST_CONFIG = """
[run]
grace_period_s = 5
backoff_base_s = 0.05
backoff_max_s = 0.2
db_retry_s = 5
"""


def platform_config(**per_platform: dict[str, Any]) -> str:
    out = []
    for name in PLATFORMS:
        values = {"rpm": 60000, "max_concurrency": 20, "timeout_s": 5, "max_attempts": 3,
                  **per_platform.get(name, {})}
        out.append(f"[platforms.{name}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Env:
    sim: RunningSimulator
    db_url: str
    home: Path
    store: Store
    config: Path
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
        e.update(
            DATABASE_URL=self.db_url,
            PROMPT_ANALYZER_HOME=str(self.home),
            PROMPT_ANALYZER_CONFIG=str(self.config),
            OPENAI_API_KEY="sk-test-openai-000000000000000000",
            ANTHROPIC_API_KEY="sk-ant-test-0000000000000000",
            GEMINI_API_KEY="AIzaTestKey000000000000000000000000000",
            PERPLEXITY_API_KEY="pplx-test0000000000000000000",
            OPENAI_BASE_URL=self.sim.base_urls["openai"],
            ANTHROPIC_BASE_URL=self.sim.base_urls["claude"],
            GOOGLE_GEMINI_BASE_URL=self.sim.base_urls["gemini"],
            PERPLEXITY_BASE_URL=self.sim.base_urls["perplexity"],
        )
        e.pop("GOOGLE_API_KEY", None)
        e.update(extra)
        return e

    def write_config(self, text: str) -> None:
        self.config.write_text(FAST_CONFIG + text)

    async def start(self, *args: str, **env: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prompt_analyzer", *args,
            env=self.env(**env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    async def kill_leftovers(self) -> None:
        """A failed test must not leave an `analyze` behind (it would hold locks and the CPU)."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def analyze(self, *args: str, timeout: float = 60, **env: str) -> Result:  # noqa: ASYNC109
        proc = await self.start(*args, **env)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            out, err = await proc.communicate()
            raise AssertionError(f"analyze {args} timed out; stderr: {err.decode()[-2000:]}") from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def add_prompts(self, texts: list[str]) -> None:
        await self.store.import_prompts([NewPrompt(PROJECT, t) for t in texts])

    async def rows(self) -> list[dict[str, Any]]:
        return await self.store.fetchall(
            "SELECT r.*, p.prompt_text AS tracked_text FROM ai_responses r "
            "JOIN prompt_tracking p ON p.id = r.prompt_tracking_id ORDER BY r.platform, p.prompt_text"
        )


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    s = await start_simulator(SimulatorConfig.for_profile("fast"))
    yield s
    await s.stop()


@pytest.fixture
async def env(sim: RunningSimulator, store: Store, db_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(sim=sim, db_url=db_url, home=tmp_path / "home", store=store, config=tmp_path / "config.toml")
    e.write_config(platform_config())
    try:
        yield e
    finally:
        await e.kill_leftovers()

