"""Control endpoints, configuration, answer size, scale, latency and the command line."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from prompt_analyzer.simulator import (
    BASE_PATHS,
    PROFILES,
    SIM_PLATFORMS,
    PlatformSim,
    RunningSimulator,
    SimulatorConfig,
    SimulatorConfigError,
    prompt_hash,
    start_simulator,
)
from prompt_analyzer.simulator.__main__ import main as cli_main
from prompt_analyzer.simulator.server import SimState

from .sim_helpers import raw_request


async def test_stats_count_answers_per_prompt(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    for prompt in ("alpha", "alpha", "beta", "gamma [[sim:fault=500]]"):
        url, headers, body = raw_request(sim, "openai", prompt)
        await http.post(url, headers=headers, json=body)
    url, headers, body = raw_request(sim, "claude", "alpha")
    await http.post(url, headers=headers, json=body)
    stats = (await http.get(sim.url + "/_sim/stats")).json()
    assert stats["answered"]["openai"] == {prompt_hash("alpha"): 2, prompt_hash("beta"): 1}
    assert stats["answered"]["claude"] == {prompt_hash("alpha"): 1}
    assert prompt_hash("alpha") == __import__("hashlib").sha256(b"alpha").hexdigest()[:16]
    assert stats["platforms"]["openai"] == {"requests": 4, "ok": 3, "429": 0, "fault:500": 1}
    assert (await http.post(sim.url + "/_sim/reset")).json() == {"status": "ok"}
    stats = (await http.get(sim.url + "/_sim/stats")).json()
    assert stats["answered"]["openai"] == {} and stats["platforms"]["openai"]["requests"] == 0


async def test_health_and_config_endpoints(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    assert (await http.get(sim.url + "/_sim/health")).json()["status"] == "ok"
    current = (await http.get(sim.url + "/_sim/config")).json()
    assert current["profile"] == "fast" and current["platforms"]["openai"]["rpm"] is None
    current["platforms"]["openai"]["rpm"] = 60
    r = await http.put(sim.url + "/_sim/config", json=current)
    assert r.status_code == 200 and r.json()["platforms"]["openai"]["rpm"] == 60.0
    assert sim.config.platform("openai").rpm == 60.0
    url, headers, body = raw_request(sim, "openai", "limited now")
    codes = [(await http.post(url, headers=headers, json=body)).status_code for _ in range(2)]
    assert codes == [200, 429]
    bad = await http.put(sim.url + "/_sim/config", json={"platforms": {"openai": {"fault_kinds": ["boom"]}}})
    assert bad.status_code == 400 and "boom" in bad.json()["error"]["message"]


def test_config_round_trip_and_validation() -> None:
    config = SimulatorConfig.from_dict(
        {"profile": "realistic", "seed": 3, "answer_bytes": 1000,
         "platforms": {"claude": {"rpm": 5, "tpm": 1000, "fault_rate": 0.1, "fault_kinds": ["hang"],
                                  "invalid_keys": ["k"], "valid_keys": ["v"]}}}
    )
    assert config.platform("claude") == PlatformSim(
        rpm=5.0, tpm=1000, latency_mean_s=2.5, latency_sigma=0.5, fault_rate=0.1, fault_kinds=("hang",),
        invalid_keys=("k",), valid_keys=("v",)
    )
    assert config.platform("openai").rpm == 500 and config.platform("perplexity").latency_mean_s == 3.0
    assert config.platform("openai-chat") == PlatformSim(rpm=500.0, latency_mean_s=1.2, latency_sigma=0.5)
    assert SimulatorConfig.from_dict(config.to_dict()) == config
    assert SimulatorConfig() == SimulatorConfig.for_profile("realistic")
    assert SimulatorConfig.for_profile("fast").platform("gemini") == PlatformSim()
    bad: dict[str, Any]
    for bad in ({"platforms": {"bing": {}}}, {"platforms": {"openai": {"rpm": -1}}}, {"nope": 1},
                {"profile": "slow"}, {"platforms": {"openai": {"fault_rate": 2}}}):
        with pytest.raises(SimulatorConfigError):
            SimulatorConfig.from_dict(bad)


def test_every_platform_everywhere(sim: RunningSimulator) -> None:
    """Each simulated platform has a base URL, a section in every profile, counters and a limiter."""
    assert set(BASE_PATHS) == set(SIM_PLATFORMS) == set(sim.base_urls)
    assert sim.base_urls["openai-chat"] == sim.url + "/openai-chat/v1"
    for profile in PROFILES:
        assert set(SimulatorConfig.for_profile(profile).platforms) == set(SIM_PLATFORMS)
    assert set(sim.state.limiters) == set(sim.state.counts) == set(sim.state.answered) == set(SIM_PLATFORMS)


def test_lognormal_latency_mean() -> None:
    state = SimState(SimulatorConfig.for_profile("realistic", seed=1))
    samples = [state.latency(state.config.platform("claude")) for _ in range(4000)]
    assert statistics.fmean(samples) == pytest.approx(2.5, rel=0.06)
    assert min(samples) > 0 and max(samples) > 5  # a tail, as real providers have
    assert state.latency(PlatformSim(latency_mean_s=0)) == 0


async def test_latency_applies(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("gemini", latency_mean_s=0.2, latency_sigma=0))
    url, headers, body = raw_request(sim, "gemini", "slow one")
    t0 = time.monotonic()
    assert (await http.post(url, headers=headers, json=body)).status_code == 200
    assert 0.19 <= time.monotonic() - t0 < 10  # the latency applies (the upper bound only catches a hang)


async def test_one_megabyte_answers(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast", answer_bytes=1_000_000))
    url, headers, body = raw_request(sim, "openai", "a long one")
    r = await http.post(url, headers=headers, json=body)
    text = r.json()["output"][1]["content"][0]["text"]
    assert 999_000 <= len(text.encode()) <= 1_001_000
    url, headers, body = raw_request(sim, "gemini", "a long one")
    parts = (await http.post(url, headers=headers, json=body)).json()["candidates"][0]["content"]["parts"]
    assert len(parts[0]["text"].encode()) >= 999_000


async def test_thousands_of_concurrent_requests(sim: RunningSimulator) -> None:
    sim.set_config(SimulatorConfig.for_profile("fast").with_platform("openai", latency_mean_s=0.3, latency_sigma=0))
    url, headers, body = raw_request(sim, "openai", "scale")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> int:
            async with session.post(url, headers=headers, json=body) as r:
                await r.read()
                return r.status

        t0 = time.monotonic()
        codes = await asyncio.gather(*(one() for _ in range(1500)))
        elapsed = time.monotonic() - t0
    assert codes.count(200) == 1500
    assert elapsed < 10  # all wait their 0.3 s together, not in series (1500 x 0.3 s = 450 s)
    assert (await sim.stats())["answered"]["openai"][prompt_hash("scale")] == 1500


async def test_stop_releases_hanging_requests(http: httpx.AsyncClient) -> None:
    own = await start_simulator(SimulatorConfig.for_profile("fast"))
    url, headers, body = raw_request(own, "openai", "[[sim:fault=hang]]")
    pending = asyncio.ensure_future(http.post(url, headers=headers, json=body, timeout=30))
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    await own.stop()
    assert time.monotonic() - t0 < 15  # the hanging request is released, not awaited (30 s, 3,600 s)
    with pytest.raises(httpx.TransportError):
        await pending


def test_cli_subprocess(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prompt_analyzer.simulator", "--profile", "fast", "--port", "0",
         "--port-file", str(port_file), "--rpm", "openai=120", "--rpm", "openai-chat=30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert url.endswith(":" + port_file.read_text().strip())
        r = httpx.post(url + "/perplexity/chat/completions", headers={"Authorization": "Bearer pplx-x"},
                       json={"model": "sonar", "messages": [{"role": "user", "content": "hi"}]}, timeout=5)
        assert r.status_code == 200 and r.json()["citations"]
        config = httpx.get(url + "/_sim/config").json()["platforms"]
        assert config["openai"]["rpm"] == 120 and config["openai-chat"]["rpm"] == 30
        r = httpx.post(url + "/openai-chat/v1/chat/completions", headers={"Authorization": "Bearer sk-x"},
                       json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}, timeout=5)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--rpm", "bing=5"]) == 2
    assert "bing" in capsys.readouterr().err
    assert cli_main(["--config", "/nonexistent/sim.json"]) == 2
