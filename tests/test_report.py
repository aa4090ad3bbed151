"""Rendering untrusted text: provider answers, error messages, model names and batch keys through rich.

Rich parses ``[...]`` as markup: ``[/x]`` raises MarkupError, ``[bold]`` or ``[link=...]`` silently
change or swallow the text.  Every such string must appear literally; control characters (a provider
answer holding ``ESC[31m``) are shown as escapes, never sent to the terminal.
"""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys
import uuid
from io import StringIO
from typing import Any

import pytest
from rich.console import Console

from prompt_analyzer.db import BatchRow
from prompt_analyzer.engine.runner import PlatformProgress, Progress
from prompt_analyzer.report import LiveReporter, Reporter, render_prompt_result

from .harness import Env, platform_config

NASTY = ["[/x]", "[bold]", "[link=http://x]y[/link]", "\x1b[31m"]


def shown(s: str) -> str:
    """What the text must look like on a rich console: literally, with ESC written as \\x1b."""
    return s.replace("\x1b", "\\x1b")


def console() -> tuple[Console, StringIO]:
    buf = StringIO()
    return Console(file=buf, width=400, color_system=None), buf


def report(s: str) -> dict[str, Any]:
    plat = {"total": 2, "success": 1, "error": 1, "processing": 0, "pending": 0, "tokens": 10, "cost_usd": 0.001,
            "p50_ms": 1200, "p95_ms": 1500, "attempts": 3,
            "top_errors": [{"class": f"cls{s}", "message": f"boom {s} end", "count": 2}],
            "run": {"calls": 3, "rate_limited": 1, "retries": 1, "circuit_open": f"open {s}"}}
    return {"batch_id": str(uuid.uuid4()), "key": f"key{s}", "trigger": "manual", "status": "completed_with_errors",
            "total_jobs": 2, "completed_jobs": 2, "failed_jobs": 0, "cost_usd": 0.001, "duration_s": 1.5,
            "platforms": {"openai": plat, f"plat{s}": plat}}


@pytest.mark.parametrize("s", NASTY)
def test_live_summary_shows_untrusted_text_literally(s: str) -> None:
    c, buf = console()
    LiveReporter(c).summary(report(s))
    text = buf.getvalue()
    for needle in (f"key{s}", f"cls{s}", f"boom {s} end", f"plat{s}"):
        assert shown(needle) in text, (needle, text)
    assert "\x1b" not in text


@pytest.mark.parametrize("s", NASTY)
def test_live_start_and_progress_show_the_key_literally(s: str) -> None:
    c, buf = console()
    r = LiveReporter(c)
    progress = Progress(platforms={"openai": PlatformProgress(total=2, success=1), f"plat{s}": PlatformProgress(
        total=2, error=1, breaker="circuit open")})
    r.start(BatchRow(id=uuid.uuid4(), idempotency_key=f"key{s}", trigger="manual", status="running", total_jobs=2,
                     completed_jobs=0, failed_jobs=0, started_at=None, completed_at=None, platforms=None,
                     filters={}), progress, resumed=False)
    r.tick(progress)
    r.stop()
    text = buf.getvalue()
    assert shown(f"key{s}") in text and shown(f"plat{s}") in text
    assert "\x1b" not in text


def test_plain_summary_keeps_text() -> None:
    buf = StringIO()
    Reporter(buf).summary(report("[/x]"))
    assert "batch key[/x] completed_with_errors" in buf.getvalue() and "boom [/x] end" in buf.getvalue()


@pytest.mark.parametrize("s", NASTY)
def test_prompt_result_shows_untrusted_text_literally(s: str) -> None:
    c, buf = console()
    rows = [
        {"platform": "openai", "status": "success", "model_version": f"model{s}", "tokens_used": 10, "cost": 0.001,
         "execution_time_ms": 1200, "response_text": f"answer {s} done",
         "citations": [{"position": 1, "domain": f"dom{s}", "url": f"https://x.example/{s}", "title": f"t{s}",
                        "cited": True}]},
        {"platform": "claude", "status": "error", "model_version": None, "error_class": f"cls{s}",
         "error_message": f"bad {s} request", "citations": []},
    ]
    render_prompt_result(c, rows)
    text = buf.getvalue()
    for needle in (f"model{s}", f"answer {s} done", f"dom{s}", f"https://x.example/{s}", f"cls{s}",
                   f"bad {s} request"):
        assert shown(needle) in text, (needle, text)
    assert "\x1b" not in text


# ------------------------------------------------------------------ real `analyze` processes


async def analyze_at_a_terminal(env: Env, *args: str, timeout: float = 60) -> tuple[int, str, str]:  # noqa: ASYNC109
    """`analyze ...` with stdout on a pseudo-terminal (the rich live display and summary), stderr a pipe."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prompt_analyzer", *args, env=env.env(COLUMNS="200", TERM="xterm"),
        stdout=slave, stderr=asyncio.subprocess.PIPE,
    )
    os.close(slave)

    def drain() -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    reader = asyncio.create_task(asyncio.to_thread(drain))
    try:
        assert proc.stderr is not None
        err = await asyncio.wait_for(proc.stderr.read(), timeout)
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        raise AssertionError(f"analyze {args} timed out") from None
    finally:
        out = await reader
        os.close(master)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def test_run_and_status_with_a_markup_key_at_a_terminal(env: Env) -> None:
    await env.add_prompts(["what is [bold] markup"])
    code, out, err = await analyze_at_a_terminal(env, "run", "--key", "[/x]", "--platform", "openai")
    assert code == 0, (out, err)
    assert "unexpected" not in err and "[/x]" in out, (out, err)
    code, out, err = await analyze_at_a_terminal(env, "status", "[/x]")
    assert code == 0, (out, err)
    assert "batch [/x]: completed" in out, (out, err)


async def test_prompt_with_a_markup_model_name(env: Env) -> None:
    """The simulator's Claude reports the model it was asked for: a model named [/x] comes back as given."""
    env.write_config(platform_config(claude={"model": "claude-[/x]"}))
    await env.add_prompts(["one prompt"])
    pid = (await env.store.fetchall("SELECT id FROM prompt_tracking"))[0]["id"]
    r = await env.analyze("prompt", str(pid), "--platform", "claude")
    assert r.code == 0, r.stderr
    assert "claude-[/x]" in r.stdout and "unexpected" not in r.stderr


async def test_import_file_named_with_markup(env: Env, tmp_path: Any) -> None:
    f = tmp_path / "[bold]my [red]prompts.jsonl"  # a file name cannot hold "/": markup here is swallowed
    f.write_text('{"project_id": "22222222-2222-2222-2222-222222222222", "prompt_text": "hi"}\n')
    r = await env.analyze("prompts", "import", str(f))
    assert r.code == 0, r.stderr
    assert "imported 1 prompts from [bold]my [red]prompts.jsonl" in r.stdout
