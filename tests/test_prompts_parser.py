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


def test_jsonl_lines_are_split_on_newline_only() -> None:
    """U+2028, U+2029, U+0085 are legal inside a JSON string; str.splitlines would cut the line there."""
    keep = "before\u2028line-sep\u2029para-sep\u0085next-line after"
    rows = [
        json.dumps({"project_id": P, "prompt_text": keep}, ensure_ascii=False),
        json.dumps({"project_id": P, "prompt_text": "crlf line"}, ensure_ascii=False),
    ]
    data = (rows[0] + "\n" + rows[1] + "\r\n").encode()
    parsed = parse_import(data, name="x.jsonl")
    assert [p.prompt_text for p in parsed.prompts] == [keep, "crlf line"]

    # line numbers in errors count \n only: the raw \x1c / \v / \f / U+2028 on lines 1-3 add none
    bad = (
        json.dumps({"project_id": P, "prompt_text": "ok\u2028ok"}, ensure_ascii=False) + "\n"   # 1 ok
        + '{"project_id": "' + P + '", "prompt_text": "raw \x1c control"}\r\n'                # 2 bad: control char
        + json.dumps({"project_id": P, "prompt_text": "ok\u0085"}, ensure_ascii=False) + "\n"  # 3 ok
        + '{"project_id": "nope", "prompt_text": "x\u2029y"}\n'                                # 4 bad: not a UUID
        + '{"project_id": "' + P + '", "prompt_text": "\v\f"}\n'                               # 5 bad: control chars
    ).encode()
    with pytest.raises(InputError) as e:
        parse_import(bad, name="x.jsonl")
    assert [line for line, _ in e.value.problems] == [2, 4, 5]
    assert "project_id is not a UUID" in e.value.problems[1][1]


def test_csv_keeps_unicode_line_separators_in_fields() -> None:
    text = "a\u2028b\u2029c\u0085d\x1ce"
    data = f"project_id,prompt_text\n{P},{text}\n{P},second\nnope,third\n".encode()
    with pytest.raises(InputError) as e:
        parse_import(data, name="x.csv")
    assert [line for line, _ in e.value.problems] == [4]
    parsed = parse_import(data.rsplit(b"nope", 1)[0], name="x.csv")
    assert [p.prompt_text for p in parsed.prompts] == [text, "second"]
