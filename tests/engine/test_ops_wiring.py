"""`analyze run --metrics-file --ping-url --notify-url`: written and sent, never failing the run."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..harness import Env


async def test_metrics_pings_and_webhook(env: Env, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await env.add_prompts(["metrics prompt"])
        prom = tmp_path / "pa.prom"
        r = await env.analyze("run", "--key", "ops", "--metrics-file", str(prom),
                              "--ping-url", f"http://127.0.0.1:{port}/ping/abc",
                              "--notify-url", f"http://127.0.0.1:{port}/hook")
        assert r.code == 0, r.stderr
        text = prom.read_text()
        assert 'prompt_analyzer_batch_status{status="completed"} 1' in text
        assert 'prompt_analyzer_calls_total{platform="openai",status="success"} 1' in text
        assert "prompt_analyzer_last_success_timestamp_seconds" in text
        paths = [p for _, p in seen]
        assert paths[0] == "/ping/abc/start" and "/ping/abc/0" in paths and ("POST", "/hook") in seen
        # a dead webhook and ping never fail the run: the batch is finished, exit code stays 0
        dead = await env.analyze("run", "--key", "ops", "--ping-url", "http://127.0.0.1:1/x",
                                 "--metrics-file", str(prom))
        assert dead.code == 0 and "127.0.0.1:1" in dead.stderr
        assert 'prompt_analyzer_exit_code 0' in prom.read_text()
    finally:
        await runner.cleanup()
