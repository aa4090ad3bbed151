"""`analyze report` as a user runs it (a real subprocess, a real database), and the webhook's headline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from prompt_analyzer.analytics.metrics import compute_report
from prompt_analyzer.analytics.render_csv import CSV_FILES
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand
from prompt_analyzer.simulator.content import make_answer

from ..harness import PROJECT, Env
from .seed import P, seed_two_batches


def without_time(j: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in j.items() if k != "generated_at"}


async def test_json_csv_html_and_tables(env: Env, tmp_path: Path) -> None:
    b1, b2 = await seed_two_batches(env.store)
    r = await env.analyze("report", "--project", str(P), "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert without_time(got) == without_time((await compute_report(env.store, project=P)).to_json())
    acme = got["projects"][str(P)]["brands"]["Acme"]  # the contract's keys, figures by hand (seed.py)
    assert (acme["own"], acme["mentions"], acme["visibility"], acme["visibility_ci"]) == (True, 3, 0.4286,
                                                                                          [0.1582, 0.7495])
    assert (acme["share_of_voice"], acme["avg_rank"], acme["citation_share"]) == (0.375, 1.3333, 0.2)
    assert acme["platforms"]["gemini"]["answers"] == 3 and acme["platforms"]["openai"]["visibility"] == 0.5

    r = await env.analyze("report", "--csv", str(tmp_path / "csv"), "--html", str(tmp_path / "r.html"))
    assert r.code == 0, r.stderr
    assert "Acme (own)" in r.stdout and "43% (16–75%)" in r.stdout
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(CSV_FILES)
    assert f"wrote {len(CSV_FILES)} CSV files to {tmp_path / 'csv'}" in r.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page and "Acme" in page

    r = await env.analyze("report", "--batch", str(b1), "--json")
    assert r.code == 0 and r.json()["batch_id"] == str(b1)
    r = await env.analyze("report", "--since", "2026-11-01", "--json")
    assert r.code == 0, r.stderr
    pooled = r.json()
    assert pooled["batch_ids"] == [str(b2), str(b1)] and pooled["projects"][str(P)]["answers"] == 10


@pytest.mark.parametrize(("args", "message"), [
    (["--last", "--batch", "11111111-1111-4111-8111-111111111111"], "error: give one of --last, --batch and --since"),
    (["--since", "yesterday"], "error: --since is not a date (YYYY-MM-DD or an ISO date and time): 'yesterday'"),
    (["--batch", "nope"], "error: --batch is not a UUID: 'nope'"),
    (["--batch", "11111111-1111-4111-8111-111111111111"],
     "error: nothing to report: no batch 11111111-1111-4111-8111-111111111111"),
])
async def test_bad_input_is_one_line_and_exit_2(env: Env, args: list[str], message: str) -> None:
    r = await env.analyze("report", *args)
    assert r.code == 2 and r.stderr.strip().splitlines()[-1] == message, r.stderr


async def test_nothing_to_report_and_unwritable_files(env: Env, tmp_path: Path) -> None:
    r = await env.analyze("report")
    assert r.code == 2 and "nothing to report: no batch holds a successful answer" in r.stderr
    await seed_two_batches(env.store)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = await env.analyze("report", "--html", str(blocker / "r.html"))
    assert r.code == 2 and r.stderr.strip().splitlines()[-1].startswith("error: cannot write"), r.stderr


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_notify_payload_has_the_headline(env: Env, webhook: tuple[str, list[Any]]) -> None:
    """The simulated answers name their sources' sites ("According to Wikipedia, ..."): tracking Wikipedia
    (own) and Reuters, the expected figures follow from the simulator's deterministic answers."""
    url, received = webhook
    prompts = [f"best crm for a small agency {i}" for i in range(8)]
    await env.add_prompts(prompts)
    await AnalyticsStore(env.store.pool).add_brands([
        NewBrand(PROJECT, "Wikipedia", domains=("wikipedia.org",), is_own=True),
        NewBrand(PROJECT, "Reuters", domains=("reuters.com",)),
    ])
    answers = [make_answer(p, "openai", env.sim.config.seed) for p in prompts]
    wiki = sum(1 for a in answers if any("Wikipedia" in s.text for s in a.sentences))
    reuters = sum(1 for a in answers if any("Reuters" in s.text for s in a.sentences))
    assert (wiki, reuters) == (2, 2)  # worked out once: prompts 0 and 6 name Wikipedia, 1 and 2 Reuters

    r = await env.analyze("run", "--key", "n1", "--platform", "openai", "--notify-url", url, "--json")
    assert r.code == 0, r.stderr
    for _ in range(100):  # the webhook is posted before the process exits; this only waits for the server
        if received:
            break
        await asyncio.sleep(0.05)
    (payload,) = received
    assert payload["batch_id"] == r.json()["batch_id"] and payload["status"] == "completed"
    vis = payload["visibility"]
    assert vis["batch_id"] == payload["batch_id"] and vis["comparable"] is True
    head = vis["projects"][str(PROJECT)]
    assert head["answers"] == 8 and head["flagged_changes"] == []  # the first batch: nothing to compare
    w, r = head["brands"]["Wikipedia"], head["brands"]["Reuters"]
    # 2 of 8 answers each; Wilson 95%: centre (0.25 + 1.96²/16) / (1 + 1.96²/8) = 0.3311, half-width 0.2596
    assert (w["own"], w["visibility"], w["share_of_voice"], w["avg_rank"]) == (True, 0.25, 0.5, 1.0)
    assert w["visibility_ci"] == [pytest.approx(0.0715, abs=2e-4), pytest.approx(0.5907, abs=2e-4)]
    assert (r["own"], r["visibility"], r["share_of_voice"]) == (False, 0.25, 0.5)
    assert uuid.UUID(vis["batch_id"])
