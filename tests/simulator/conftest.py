"""One simulator per test session (fast profile); each test starts from zeroed stats and fresh quotas."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator


@pytest.fixture(scope="session")
async def sim_server() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(SimulatorConfig.for_profile("fast"))
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: RunningSimulator) -> RunningSimulator:
    sim_server.set_config(SimulatorConfig.for_profile("fast"))
    await sim_server.reset()
    return sim_server


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
