"""Bad input gets one line on stderr, the contract's exit code, no traceback, and nothing changed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from prompt_analyzer.db import Store

from .helpers import analyze, one_line_error

PROJECT = "33333333-3333-3333-3333-333333333333"


@pytest.fixture
def dbenv(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "PROMPT_ANALYZER_HOME": str(tmp_path / "home")}


async def _count(store: Store) -> int:
    row = await store.fetchone("SELECT count(*) AS n FROM prompt_tracking")
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a\x00b", "NUL"),
        ("   \t  ", "only whitespace"),
        ("x" * 40_000, "40,000 characters"),
        ("x" * 200_000, "200,000 characters"),
    ],
)
async def test_bad_prompt_text(text: str, needle: str, dbenv: dict[str, str], store: Store) -> None:
    if "\x00" in text or len(text) > 100_000:  # argv cannot carry NUL or 200,000 characters: use a file
        path = Path(dbenv["PROMPT_ANALYZER_HOME"]).parent / "bad.jsonl"
        path.write_text(json.dumps({"project_id": PROJECT, "prompt_text": text}) + "\n")
        r = analyze("prompts", "import", str(path), env=dbenv)
        assert r.returncode == 2 and "line 1" in r.stderr and needle in r.stderr, r.stderr
    else:
        one_line_error(analyze("prompts", "add", "--project", PROJECT, text, env=dbenv), 2, needle)
    assert await _count(store) == 0


async def test_invalid_uuid_and_unknown_platform(dbenv: dict[str, str], store: Store) -> None:
    one_line_error(analyze("prompts", "add", "--project", "nope", "hello", env=dbenv), 2, "not a UUID")
    one_line_error(analyze("prompts", "add", "--project", PROJECT, "--platform", "bard", "hi", env=dbenv), 2,
                   "unknown platform 'bard'")
    one_line_error(analyze("run", "--platform", "bard", env=dbenv), 2, "unknown platform")
    one_line_error(analyze("prompts", "deactivate", "123", env=dbenv), 2, "not a UUID")
    one_line_error(analyze("prompts", "deactivate", str(uuid.uuid4()), env=dbenv), 2, "no prompt")
    assert await _count(store) == 0


async def test_import_is_all_or_nothing_with_line_numbers(dbenv: dict[str, str], store: Store, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"project_id,prompt_text,is_active,platforms\n{PROJECT},first,true,openai;claude\n"
                    f"{PROJECT},\"second, with comma\",,\n")
    r = analyze("prompts", "import", str(good), env=dbenv)
    assert r.returncode == 0 and "imported 2" in r.stdout, r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(f"project_id,prompt_text\n{PROJECT},fine\nnot-a-uuid,x\n{PROJECT},   \n{PROJECT},ok\n")
    r = analyze("prompts", "import", str(bad), env=dbenv)
    assert r.returncode == 2
    assert "line 3: project_id is not a UUID" in r.stderr and "line 4: prompt text is only whitespace" in r.stderr
    assert "line 2" not in r.stderr and "Traceback" not in r.stderr
    broken = tmp_path / "broken.csv"
    broken.write_bytes(f"project_id,prompt_text\n{PROJECT},caf\xc3\xa9\n{PROJECT},bad \xff byte\n".encode("latin-1"))
    r = analyze("prompts", "import", str(broken), env=dbenv)
    assert r.returncode == 2 and "not valid UTF-8" in r.stderr and "line 3" in r.stderr, r.stderr
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(f'{{"project_id": "{PROJECT}", "prompt_text": "j1", "platforms": "gemini"}}\n{{"oops"\n')
    r = analyze("prompts", "import", str(jsonl), env=dbenv)
    assert r.returncode == 2 and "line 2: invalid JSON" in r.stderr
    assert await _count(store) == 2  # only the good file went in
    r = analyze("prompts", "list", "--json", env=dbenv)
    assert r.returncode == 0 and r.stdout.count("\n") == 2


def test_malformed_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run]\npage_size = \n")
    one_line_error(analyze("--config", str(cfg), "status"), 2, "invalid TOML")
    cfg.write_text("[platforms.openai]\nrpmm = 5\n")
    one_line_error(analyze("--config", str(cfg), "status"), 2, "platforms.openai.rpmm: unknown key")
    cfg.write_text("[run]\nprompt_concurrency = \"fast\"\n")
    one_line_error(analyze("--config", str(cfg), "status"), 2, "run.prompt_concurrency")
    cfg.write_text("[platforms.openai]\nrpm = -1\n")
    one_line_error(analyze("--config", str(cfg), "status"), 2, "platforms.openai.rpm: must be > 0")


def test_database_url_problems(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    one_line_error(analyze("status", env={"DATABASE_URL": "postgresql://u:pw@host:notaport/db",
                                          "PROMPT_ANALYZER_HOME": home}), 2, "DATABASE_URL is malformed")
    r = analyze("status", env={"DATABASE_URL": "postgresql://u:hunter2secret@127.0.0.1:1/db",
                               "PROMPT_ANALYZER_HOME": home})
    one_line_error(r, 75, "127.0.0.1:1")
    assert "hunter2secret" not in r.stderr + r.stdout


async def test_missing_keys_means_not_configured(dbenv: dict[str, str], store: Store) -> None:
    await store.import_prompts([])
    r = analyze("run", "--key", "nokeys", env=dbenv)
    one_line_error(r, 2, "no platform is configured")
    row = await store.fetchone("SELECT count(*) AS n FROM analysis_batches")
    assert row == {"n": 0}
