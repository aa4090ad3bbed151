"""The import parser: exact line numbers for bad rows, and no crash on any input (hypothesis)."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prompt_analyzer.prompts import InputError, parse_import

P = "44444444-4444-4444-4444-444444444444"


def test_csv_with_all_columns() -> None:
    data = f"project_id,prompt_text,is_active,platforms\n{P},hello,false,OpenAI; claude\n{P},\"multi\nline\",,\n"
    parsed = parse_import(data.encode(), name="x.csv")
    assert [(p.prompt_text, p.is_active, p.platforms) for p in parsed.prompts] == [
        ("hello", False, ["openai", "claude"]), ("multi\nline", True, None)]
    assert parsed.prompts[0].project_id == uuid.UUID(P)


def test_jsonl_with_list_platforms_and_bom() -> None:
    row = {"project_id": P, "prompt_text": "a", "platforms": ["gemini"], "is_active": True}
    data = "\ufeff" + json.dumps(row) + "\n\n"
    parsed = parse_import(data.encode("utf-8"), name="x.jsonl")
    assert parsed.fmt == "jsonl" and parsed.prompts[0].platforms == ["gemini"]


def test_every_bad_line_is_named() -> None:
    data = (f"project_id,prompt_text,platforms\n{P},ok,\n{P},,\n{P},x,bard\n{P},y\nzzz,t,\n").encode()
    with pytest.raises(InputError) as e:
        parse_import(data, name="x.csv")
    assert [line for line, _ in e.value.problems] == [3, 4, 5, 6]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_never_crashes_on_bytes(data: bytes) -> None:
    try:
        parsed = parse_import(data, name="f.csv")
    except InputError:
        return
    assert parsed.prompts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["project_id", "prompt_text", "is_active", "platforms", "x"]),
                                st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(),
                                          st.just(P), st.lists(st.text(max_size=8), max_size=3))),
                max_size=5))
def test_never_crashes_on_jsonl(rows: list[dict[str, object]]) -> None:
    data = "\n".join(json.dumps(r) for r in rows).encode()
    try:
        parse_import(data, name="f.jsonl")
    except InputError:
        pass
