"""Row level security, TLS for remote hosts, secrets never shown, SQL only with bound parameters."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from prompt_analyzer.config import Secret, load_settings
from prompt_analyzer.db import NewPrompt, Store
from prompt_analyzer.db.analytics import AnalyticsStore, NewBrand
from prompt_analyzer.db.connect import resolve_target
from prompt_analyzer.redact import scrub

TABLES = ["prompt_tracking", "analysis_batches", "analysis_jobs", "ai_responses", "ai_response_citations",
          "tracked_brands", "ai_response_mentions", "ai_response_scores", "mention_score_runs"]


async def test_rls_hides_every_row_from_a_role_without_bypassrls(db_url: str, store: Store) -> None:
    await store.import_prompts([NewPrompt(uuid.uuid4(), "secret prompt")])
    await store.create_batch(key="rls", trigger="manual", platforms=["openai"])
    await AnalyticsStore(store.pool).add_brands([NewBrand(uuid.uuid4(), "secret brand")])
    role = f"anon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOBYPASSRLS").format(sql.Identifier(role)))
        try:
            for t in TABLES:
                admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(t), sql.Identifier(role)))
            with psycopg.connect(db_url) as conn:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
                for t in TABLES:
                    n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()
                    assert n == (0,), t
                conn.execute("RESET ROLE")
                assert conn.execute("SELECT count(*) FROM prompt_tracking").fetchone() == (1,)
        finally:
            for t in TABLES:
                admin.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(t), sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize(
    ("url", "sslmode", "tx"),
    [
        ("postgresql://u:p@db.abc.supabase.co:5432/postgres", "require", False),
        ("postgresql://u:p@aws-0-eu.pooler.supabase.com:6543/postgres", "require", True),
        ("postgresql://u:p@db.example.com/postgres?sslmode=verify-full", "verify-full", False),
        ("postgresql://u@127.0.0.1:5432/postgres", None, False),
        ("postgresql://u@localhost/postgres", None, False),
        ("postgresql://u@/postgres?host=/var/run/postgresql", None, False),
    ],
)
def test_tls_and_pooler_detection(url: str, sslmode: str | None, tx: bool) -> None:
    t = resolve_target(url)
    assert conninfo_to_dict(t.conninfo).get("sslmode") == sslmode
    assert t.transaction_pooler is tx
    assert "p@" not in t.where and ":p" not in t.where


def test_secret_never_shows() -> None:
    s = Secret("sk-live-abcdef123456")
    assert "abcdef" not in repr(s) + str(s) + f"{s}" + repr([s]) + repr({"k": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    settings = load_settings(env={"OPENAI_API_KEY": "sk-live-abcdef123456", "DATABASE_URL": "postgresql://u:pw1234@h/db"})
    assert "abcdef" not in repr(settings) and "pw1234" not in repr(settings)
    assert set(settings.secrets()) == {"sk-live-abcdef123456", "pw1234"}


def test_scrub_removes_configured_secrets_and_key_shapes() -> None:
    msg = ("Incorrect API key provided: sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA; also my-own-secret-value and "
           "AIzaSyA1234567890123456789012345678901 and postgresql://user:hunter2@db/x")
    out = scrub(msg, ["my-own-secret-value"])
    for s in ("AAAAAAAAAAAA", "my-own-secret-value", "AIzaSyA123", "hunter2"):
        assert s not in out


def test_no_string_built_sql() -> None:
    """ruff's S608 fails on SQL built from strings anywhere in the package (also run by CI)."""
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "S608", "prompt_analyzer"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout
