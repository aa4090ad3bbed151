"""A small real HTTP server for the ops tests: records requests, fails or hangs on demand."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """What the server does: the first ``fail_first`` requests get ``fail_status``; ``hang`` never answers."""

    url: str
    requests: list[Seen] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 500
    status: int = 200
    hang: bool = False
    retry_after: str | None = None


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        ep.requests.append(Seen(request.method, request.path, request.query_string,
                                dict(request.headers), await request.read()))
        if ep.hang:
            await asyncio.sleep(3600)
        if len(ep.requests) <= ep.fail_first:
            headers = {"Retry-After": ep.retry_after} if ep.retry_after else None
            return web.Response(status=ep.fail_status, text="upstream unhappy", headers=headers)
        return web.Response(status=ep.status, text="OK")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    ep.url = f"http://{host}:{port}"
    try:
        yield ep
    finally:
        await runner.cleanup()


@pytest.fixture
def dead_url() -> str:
    """A local port nothing listens on: connections are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
