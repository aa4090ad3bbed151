"""Shared helpers for the CLI tests: `analyze` as a subprocess, and the one-line error check."""

from __future__ import annotations

import os
import subprocess
import sys


def analyze(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    base.pop("PROMPT_ANALYZER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "prompt_analyzer", *args], env={**base, **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def one_line_error(r: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert needle in r.stderr, r.stderr
    assert r.stderr.count("error:") == 1
