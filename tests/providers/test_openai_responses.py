"""The OpenAI Responses wire format: hand-picked bodies through ``openai_responses.parse`` and the client.

The fuzzing of every parser is in test_parsers.py; the real recorded bodies in test_cassettes.py.
"""

from __future__ import annotations

import pytest

from prompt_analyzer.providers import MalformedResponse, PermanentError
from prompt_analyzer.providers.openai_responses import parse, read_messages

from .helpers import load_payload, offline_provider


def read(body: object) -> object:
    return offline_provider("openai").result(body)


def test_openai_failed_status_is_malformed_and_refusal_permanent() -> None:
    body = load_payload("openai-responses-plain.json")
    body["status"] = "failed"
    body["error"] = {"code": "server_error", "message": "The model failed"}
    with pytest.raises(MalformedResponse, match="The model failed"):
        read(body)
    body = load_payload("openai-responses-plain.json")
    body["output"][0]["content"] = [{"type": "refusal", "refusal": "I can't help with that."}]
    with pytest.raises(PermanentError, match="refusal"):
        read(body)


def test_incomplete_without_text_is_a_final_empty_answer() -> None:
    body = load_payload("openai-responses-plain.json")
    body["status"] = "incomplete"
    body["incomplete_details"] = {"reason": "max_output_tokens"}
    body["output"] = [{"type": "reasoning", "summary": []}]
    with pytest.raises(PermanentError, match="empty answer"):
        read(body)


def test_bare_details_until_the_client_words_them() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse({"output": "nope"}, "req-1")
    assert info.value.message == "response has no output list" and info.value.request_id == "req-1"
    with pytest.raises(MalformedResponse) as info:
        read({"output": "nope"})
    assert info.value.message == "openai: HTTP 200: response has no output list" and info.value.status == 200


def test_read_messages_joins_parts_and_places_annotations() -> None:
    output = [
        {"type": "web_search_call", "action": {"sources": [{"url": "https://r.com/"}]}},
        {"type": "message", "content": [
            {"type": "output_text", "text": "ab", "annotations": [
                {"type": "url_citation", "url": "https://a.com/", "title": "A", "start_index": 1},
                {"type": "file_citation", "file_id": "f"}]},
            {"type": "output_text", "text": "cd", "annotations": [{"type": "url_citation", "url": "https://c.com/"}]},
            {"type": "refusal", "refusal": "no"},
        ]},
    ]
    msgs = read_messages(output)
    assert msgs.text == "ab\ncd" and msgs.refusal == "no"
    assert [(a.part_offset, a.part_length, a.start, a.url) for a in msgs.annotations] == [
        (0, 2, 1, "https://a.com/"), (3, 2, None, "https://c.com/")]
    answer = parse({"output": output, "model": "m"})
    # Without start_index an annotation sits at the end of its part; retrieved sources follow the cited.
    assert [(c.url, c.cited) for c in answer.citations] == [
        ("https://a.com/", True), ("https://c.com/", True), ("https://r.com/", False)]
    assert answer.usage.searches == 1 and answer.usage.reported is False
