"""`analyze demo` never writes simulated answers into the configured database (DATABASE_URL).

Real `analyze` subprocesses; the demo uses the embedded server under PROMPT_ANALYZER_HOME, or the
database named for it in PROMPT_ANALYZER_DEMO_DATABASE_URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from prompt_analyzer.cli.demo import Profile
from prompt_analyzer.simulator import PROFILES

TABLES = ("prompt_tracking", "analysis_batches", "analysis_jobs", "ai_responses", "ai_response_citations")


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith(("PROMPT_ANALYZER", "DATABASE_URL"))}
    env["PROMPT_ANALYZER_HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prompt_analyzer", "demo", "--prompts", "2", "--profile", "fast"],
        env=env, capture_output=True, text=True, timeout=180,  # a first start of the embedded server runs initdb
    )


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}  # noqa: S608


def test_demo_ignores_database_url_and_uses_the_embedded_database(db_url: str, tmp_path: Path) -> None:
    r = demo(demo_env(tmp_path, DATABASE_URL=db_url))
    assert r.returncode == 0, r.stderr
    assert counts(db_url) == dict.fromkeys(TABLES, 0), "the demo wrote into DATABASE_URL"
    assert "demo ignores DATABASE_URL" in r.stderr
    assert f"embedded PostgreSQL in {tmp_path / 'home' / 'postgres'}" in r.stderr
    assert "2/2 prompts completed" in r.stdout, r.stdout


def test_demo_uses_the_database_named_for_it(db_url: str, tmp_path: Path) -> None:
    r = demo(demo_env(tmp_path, PROMPT_ANALYZER_DEMO_DATABASE_URL=db_url))
    assert r.returncode == 0, r.stderr
    c = counts(db_url)
    assert c["prompt_tracking"] == 2 and c["analysis_batches"] == 1 and c["ai_responses"] == 8, c
    assert "embedded" not in r.stderr and "ignores DATABASE_URL" not in r.stderr
    assert not (tmp_path / "home" / "postgres").exists()


def test_the_profile_choices_are_the_simulators() -> None:
    assert [p.value for p in Profile] == list(PROFILES)
