"""Checking tracked prompts and parsing import files (CSV or JSON Lines), all or nothing.

Pure functions, no database: an import is validated completely before anything is written, and
every bad line is reported with its number and reason.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .config import PLATFORMS
from .db.store import NewPrompt


class InputError(ValueError):
    """Bad user input (exit 2); ``problems`` lists (line, reason) for files."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError, TypeError):
        raise InputError(f"{what} is not a UUID: {str(value)[:60]!r}") from None


def check_text(text: Any, max_chars: int) -> str:
    """The prompt text as stored; raises InputError naming the problem."""
    if not isinstance(text, str):
        raise InputError("prompt_text must be text")
    if "\x00" in text:
        raise InputError("prompt text contains a NUL character (PostgreSQL text cannot hold it)")
    if not text.strip():
        raise InputError("prompt text is empty" if not text else "prompt text is only whitespace")
    if len(text) > max_chars:
        raise InputError(
            f"prompt text has {len(text):,} characters; the maximum is {max_chars:,} (run.max_prompt_chars)"
        )
    return text


def parse_platforms(value: Any, known: Sequence[str] = PLATFORMS) -> list[str] | None:
    """Platform names, each one of ``known`` (the built-in platforms and those the configuration declares)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(";")
    names = [str(p).strip().lower() for p in items if str(p).strip()]
    if not names:
        return None
    bad = [n for n in names if n not in known]
    if bad:
        raise InputError(f"unknown platform {bad[0]!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


def parse_bool(value: Any, what: str = "is_active", default: bool = True) -> bool:
    """A yes/no field of an import (true/false, yes/no, 1/0, any case); blank: ``default``."""
    if isinstance(value, bool):
        return value
    if value is None or str(value).strip() == "":
        return default
    s = str(value).strip().lower()
    if s in ("true", "t", "yes", "y", "1"):
        return True
    if s in ("false", "f", "no", "n", "0"):
        return False
    raise InputError(f"{what} must be true or false, got {str(value)[:20]!r}")


def _row(raw: dict[str, Any], max_chars: int, known: Sequence[str] = PLATFORMS) -> NewPrompt:
    unknown = set(raw) - {"project_id", "prompt_text", "is_active", "platforms"}
    if unknown:
        raise InputError(f"unknown column {sorted(unknown)[0]!r}")
    if raw.get("project_id") in (None, ""):
        raise InputError("project_id is missing")
    if raw.get("prompt_text") is None:
        raise InputError("prompt_text is missing")
    return NewPrompt(
        project_id=parse_uuid(raw["project_id"], "project_id"),
        prompt_text=check_text(raw["prompt_text"], max_chars),
        is_active=parse_bool(raw.get("is_active")),
        platforms=parse_platforms(raw.get("platforms"), known),
    )


@dataclass
class Parsed:
    prompts: list[NewPrompt]
    fmt: str


T = TypeVar("T")


def parse_records(
    data: bytes, row: Callable[[dict[str, Any]], T], *, name: str, required: Sequence[str], header_help: str,
    what: str,
) -> tuple[list[T], str]:
    """The records of a CSV (with a header) or JSON Lines file, each made by ``row`` from its fields; all or
    nothing: every bad line is reported (InputError.problems) and then nothing is returned.  Returns the
    records and the format ("csv" or "jsonl").  Shared by every import (prompts, brands)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = data[: e.start].count(b"\n") + 1
        problem = (lineno, f"invalid UTF-8 byte at offset {e.start}")
        raise InputError(f"{name or 'file'}: not valid UTF-8", [problem]) from None
    stripped = text.lstrip()
    is_jsonl = name.endswith((".jsonl", ".ndjson", ".json")) or stripped.startswith("{")
    problems: list[tuple[int, str]] = []
    records: list[T] = []
    if is_jsonl:
        # JSON Lines are separated by \n only (\r\n tolerated).  Not str.splitlines(): it also splits on
        # U+2028, U+2029, U+0085, \x1c-\x1e, \v and \f, which may stand inside a JSON string.
        for no, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise InputError("a line must be a JSON object")
                records.append(row(obj))
            except json.JSONDecodeError as e:
                problems.append((no, f"invalid JSON: {e.msg}"))
            except InputError as e:
                problems.append((no, str(e)))
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{name or 'file'}: empty file") from None
        except csv.Error as e:
            raise InputError(f"{name or 'file'}: {e}", [(1, str(e))]) from None
        if any(r not in header for r in required):
            raise InputError(
                f"{name or 'file'}: the header must be {header_help}",
                [(1, "header: " + ",".join(header)[:100])],
            )
        try:
            for fields in reader:
                no = reader.line_num
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    problems.append((no, f"expected {len(header)} fields, found {len(fields)}"))
                    continue
                try:
                    records.append(row(dict(zip(header, fields, strict=True))))
                except InputError as e:
                    problems.append((no, str(e)))
        except csv.Error as e:
            problems.append((reader.line_num, str(e)))
    if problems:
        raise InputError(
            f"{name or 'file'}: {len(problems)} bad line(s), nothing imported", problems
        )
    if not records:
        raise InputError(f"{name or 'file'}: no {what} found")
    return records, "jsonl" if is_jsonl else "csv"


def parse_import(
    data: bytes, *, name: str = "", max_chars: int = 32_000, known: Sequence[str] = PLATFORMS
) -> Parsed:
    """CSV with header ``project_id,prompt_text[,is_active][,platforms]`` or JSON Lines with those keys."""
    prompts, fmt = parse_records(
        data, lambda raw: _row(raw, max_chars, known), name=name, required=("project_id", "prompt_text"),
        header_help="project_id,prompt_text[,is_active][,platforms]", what="prompts",
    )
    return Parsed(prompts, fmt)


def read_import_file(path: Path, max_chars: int, known: Sequence[str] = PLATFORMS) -> Parsed:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_import(data, name=path.name, max_chars=max_chars, known=known)
