"""A Redis server a test owns and may kill (``redis-server`` on a free port), for Redis lost mid-run."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A Redis server this test may kill."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            await asyncio.sleep(0.05)
    await client.aclose()
    try:
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
