"""`analyze demo`: the whole pipeline on the embedded database and the built-in simulator, with its seed data."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import typer

from ..config import PLATFORMS, Secret
from ..db import NewPrompt
from ..engine.service import prepare_run
from ._context import invocation
from ._exec import EXIT_USAGE, execute, fail, finish, say
from ._options import JsonOpt, choice
from .database import database
from .run import drive

DEMO_DATABASE_ENV = "PROMPT_ANALYZER_DEMO_DATABASE_URL"


class Profile(Enum):
    """The simulator's profiles (``simulator.PROFILES``; tests/cli/test_demo.py keeps the two equal).

    Spelled out rather than built from ``PROFILES``: importing the simulator pulls in its server (aiohttp)
    for every `analyze` command, where the demo imports it only when it runs."""

    realistic = "realistic"
    fast = "fast"


def _bad_profile(value: str) -> str:  # the simulator's own wording, as before the option was typed
    return f"--profile: profile: must be one of {', '.join(p.value for p in Profile)}, got {value!r}"


def demo(
    ctx: typer.Context,
    prompts: Annotated[int, typer.Option("--prompts", min=1, help="Sample prompts to seed if none exist.")] = 12,
    profile: Annotated[Profile, typer.Option(
        "--profile", help="Simulator profile: realistic or fast.", parser=choice(Profile, _bad_profile))]
    = Profile.realistic,
    json_mode: JsonOpt = False,
) -> None:
    """The whole pipeline on the embedded database and the built-in provider simulator.

    Never uses DATABASE_URL: runs on the embedded database, or on $PROMPT_ANALYZER_DEMO_DATABASE_URL if set.
    """
    from ..simulator import SimulatorConfig, SimulatorConfigError, start_simulator

    inv = invocation(ctx)
    try:
        sim_config = SimulatorConfig.for_profile(profile.value)
    except SimulatorConfigError as e:
        fail(inv, f"--profile: {e}", EXIT_USAGE)

    demo_url = (os.environ.get(DEMO_DATABASE_ENV) or "").strip()

    async def go() -> int:
        s = inv.load_settings()
        if demo_url:
            db_settings = replace(s.database, url=Secret(demo_url))
        else:
            if s.database.url is not None:
                say("the demo ignores DATABASE_URL (its answers are simulated) and uses the embedded database; "
                     f"set {DEMO_DATABASE_ENV} to run it on another database")
            db_settings = replace(s.database, url=None)
        s = replace(s, database=db_settings)
        sim = await start_simulator(sim_config)
        try:
            # Every platform, built-in or declared, is pointed at the simulator's endpoint for its kind:
            # the demo never calls a real provider, whatever keys the environment holds.
            plats = dict(s.platforms)
            for name, ps in s.platforms.items():
                kind = ps.kind_name
                rpm = sim_config.platform(kind).rpm
                plats[name] = replace(
                    ps, enabled=name in PLATFORMS or ps.enabled, base_url=sim.base_urls[kind],
                    api_key=Secret("sim-demo-key"), rpm=rpm or 600_000.0,
                    api="sonar" if kind == "perplexity" else ps.api,
                )
            demo_settings = replace(s, platforms=plats)
            inv.settings = demo_settings
            say(f"simulator: {sim.url} (profile {profile.value}; answers are simulated)")
            async with database(inv) as db:
                if await db.store.count_active_prompts() == 0:
                    seeded = await db.store.import_prompts(_sample_prompts(prompts))
                    say(f"seeded {seeded} sample prompts in the demo project")
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                prep = await prepare_run(
                    db, demo_settings, key=f"demo:{stamp}", trigger="demo", extra_metadata={"simulated": True}
                )
                return await drive(inv, db, prep, json_mode=json_mode)
        finally:
            await sim.stop()

    finish(execute(inv, go))


DEMO_PROJECT = "00000000-0000-4000-8000-00000000d3e0"
_SAMPLE = [
    "What is the best project management tool for a remote team of 20?",
    "Which CRM do small B2B startups recommend in 2026?",
    "Best running shoes for flat feet under $150",
    "What are the most reliable electric SUVs for cold climates?",
    "Which password manager is safest for families?",
    "Top open-source alternatives to Slack",
    "How do I choose a Postgres hosting provider for a SaaS app?",
    "What is the best note-taking app for researchers?",
    "Which email marketing platform has the best deliverability?",
    "Best budget mechanical keyboard for programming",
    "What are good accounting tools for freelancers in Europe?",
    "Which cloud GPU provider is cheapest for fine-tuning small models?",
]


def _sample_prompts(n: int) -> list[NewPrompt]:
    project = uuid.UUID(DEMO_PROJECT)
    return [
        NewPrompt(project, _SAMPLE[i % len(_SAMPLE)] + (f" (variant {i // len(_SAMPLE) + 1})" if i >= len(_SAMPLE)
                                                         else ""))
        for i in range(n)
    ]
