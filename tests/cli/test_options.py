"""Typed option values: --help lists the choices, a bad value is still one line and exit 2.

``--log-format`` and ``demo --profile`` are Enums, project and prompt ids ``uuid.UUID``; their parsers
keep the messages the options had as strings (the README's bad-input table), not typer's usage box.
"""

from __future__ import annotations

import uuid
from enum import Enum
from pathlib import Path

import pytest

from prompt_analyzer.cli._options import OptionError, choice, uuid_of

from .helpers import analyze, one_line_error


class Colour(Enum):
    red = "red"
    blue = "blue"


def test_choice_parser() -> None:
    parse = choice(Colour, lambda v: f"--colour must be red or blue, got {v!r}")
    assert parse("red") is Colour.red and parse(Colour.blue) is Colour.blue
    with pytest.raises(OptionError, match="^--colour must be red or blue, got 'RED'$"):
        parse("RED")
    assert not issubclass(OptionError, ValueError)  # typer would turn a ValueError into its usage box


def test_uuid_parser() -> None:
    u = uuid.uuid4()
    assert uuid_of("--project")(str(u)) == u and uuid_of("--project")(u) == u
    with pytest.raises(OptionError, match="^--project is not a UUID: 'nope'$"):
        uuid_of("--project")("nope")
    with pytest.raises(OptionError, match="^prompt id is not a UUID: ''$"):
        uuid_of("prompt id")("")
    assert uuid_of("--project", blank=True)("") is None


def test_help_lists_the_choices_and_types() -> None:
    env = {"COLUMNS": "200"}
    assert "<text|json>" in analyze("--help", env=env).stdout
    assert "<realistic|fast>" in analyze("demo", "--help", env=env).stdout
    assert "<list[UUID]>" in analyze("run", "--help", env=env).stdout
    assert "<UUID>" in analyze("prompts", "add", "--help", env=env).stdout
    assert "<UUID>" in analyze("prompt", "--help", env=env).stdout


def test_bad_choices_are_one_line(tmp_path: Path) -> None:
    env = {"PROMPT_ANALYZER_HOME": str(tmp_path / "home"), "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}
    r = analyze("--log-format", "xml", "status", env=env)
    one_line_error(r, 2, "error: --log-format must be text or json, got 'xml'")
    r = analyze("demo", "--profile", "slow", env=env)
    one_line_error(r, 2, "error: --profile: profile: must be one of realistic, fast, got 'slow'")


def test_bad_ids_are_one_line(tmp_path: Path) -> None:
    env = {"PROMPT_ANALYZER_HOME": str(tmp_path / "home"), "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}
    one_line_error(analyze("run", "--project", "nope", env=env), 2, "error: --project is not a UUID: 'nope'")
    one_line_error(analyze("prompts", "list", "--project", "nope", env=env), 2, "--project is not a UUID: 'nope'")
    one_line_error(analyze("prompt", "42", env=env), 2, "error: prompt id is not a UUID: '42'")
