"""Checking tracked brands and parsing brand import files (CSV or JSON Lines), all or nothing.

Pure functions, no database, the same rules as prompt imports (:mod:`.prompts`): a file is validated
completely before anything is written, and every bad line is reported with its number and reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .analytics.mentions import normalize_domain
from .db.analytics import NewBrand
from .prompts import InputError, parse_bool, parse_records, parse_uuid

__all__ = ["check_brand", "parse_brand_import", "read_brand_file"]

MAX_TERM_CHARS = 200
HEADER = "project_id,name[,aliases][,domains][,own][,match_case]"
_COLUMNS = {"project_id", "name", "aliases", "domains", "own", "is_own", "match_case"}


def _term(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be text")
    term = " ".join(value.split())
    if not term:
        raise InputError(f"{what} is empty")
    if "\x00" in term:
        raise InputError(f"{what} contains a NUL character")
    if len(term) > MAX_TERM_CHARS:
        raise InputError(f"{what} has {len(term)} characters; the maximum is {MAX_TERM_CHARS}")
    if not any(ch.isalnum() for ch in term):
        raise InputError(f"{what} {term!r} has no letter or digit: it would match punctuation")
    return term


def _items(value: Any) -> list[str]:
    """A list field: a JSON array, or text separated by ';' (CSV)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(";")
    return [str(i) for i in items if str(i).strip()]


def check_brand(
    project_id: uuid.UUID, name: Any, aliases: Sequence[Any] = (), domains: Sequence[Any] = (), *,
    own: bool = False, match_case: bool = False,
) -> NewBrand:
    """The brand as stored: terms with whitespace collapsed, duplicates dropped, domains normalised."""
    clean_name = _term(name, "brand name")
    seen = {clean_name.casefold()}
    clean_aliases: list[str] = []
    for a in aliases:
        t = _term(a, "alias")
        if t.casefold() not in seen:
            seen.add(t.casefold())
            clean_aliases.append(t)
    clean_domains: list[str] = []
    for d in domains:
        try:
            nd = normalize_domain(str(d))
        except ValueError as e:
            raise InputError(str(e)) from None
        if nd not in clean_domains:
            clean_domains.append(nd)
    return NewBrand(project_id, clean_name, tuple(clean_aliases), tuple(clean_domains), own, match_case)


def _row(raw: dict[str, Any]) -> NewBrand:
    unknown = set(raw) - _COLUMNS
    if unknown:
        raise InputError(f"unknown column {sorted(unknown)[0]!r}")
    if raw.get("project_id") in (None, ""):
        raise InputError("project_id is missing")
    if raw.get("name") in (None, ""):
        raise InputError("name is missing")
    own_key = "own" if "own" in raw else "is_own"
    return check_brand(
        parse_uuid(raw["project_id"], "project_id"), raw["name"], _items(raw.get("aliases")),
        _items(raw.get("domains")), own=parse_bool(raw.get(own_key), own_key, default=False),
        match_case=parse_bool(raw.get("match_case"), "match_case", default=False),
    )


def parse_brand_import(data: bytes, *, name: str = "") -> list[NewBrand]:
    """CSV with header ``project_id,name[,aliases][,domains][,own][,match_case]`` (lists separated by ';') or
    JSON Lines with those keys (lists as arrays).  A line naming a brand or alias that an earlier line of the
    same project names is refused (the matcher could not tell the two apart)."""
    seen: dict[tuple[uuid.UUID, str], str] = {}

    def row(raw: dict[str, Any]) -> NewBrand:
        b = _row(raw)
        for term in (b.name, *b.aliases):
            other = seen.get((b.project_id, term.casefold()))
            if other is not None:
                raise InputError(f"{term!r} is already named by brand {other!r} earlier in the file")
        for term in (b.name, *b.aliases):
            seen[(b.project_id, term.casefold())] = b.name
        return b

    brands, _ = parse_records(data, row, name=name, required=("project_id", "name"), header_help=HEADER,
                              what="brands")
    return brands


def read_brand_file(path: Path) -> list[NewBrand]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_brand_import(data, name=path.name)
