"""The Chat Completions wire format (``chat_completions.parse``), by hand-built bodies, then fuzzed.

No recorded Chat Completions body with a reusable licence is in ``payloads/``; the bodies here follow
the reference shape of OpenAI's "chat completion object" as the ``openai`` SDK types it
(``openai/types/chat/chat_completion.py``: ``id, object, created, model, choices[{index, message,
finish_reason, logprobs}], usage, service_tier, system_fingerprint``; ``chat_completion_message.py``:
``message{role, content, refusal, annotations[{type: "url_citation", url_citation{url, title,
start_index, end_index}}]}``; ``openai/types/completion_usage.py``: ``usage{prompt_tokens,
completion_tokens, total_tokens, *_details}``), plus xAI Live Search's top-level ``citations: [url]`` and
``usage.num_sources_used``.  Values (text, URLs, counts) are ours.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompt_analyzer.providers import MalformedResponse, PermanentError, ProviderResult
from prompt_analyzer.providers.chat_completions import linked_urls, parse, read_envelope, read_usage
from prompt_analyzer.providers.openai_chat import OpenAIChatProvider

from .test_openai_chat import chat_settings

M = Decimal(1_000_000)
TEXT = (
    "Mount Columbia is the highest peak in Alberta ([wikipedia.org](https://en.wikipedia.org/wiki/Mount_Columbia))."
    " It stands on the border with British Columbia ([peakbagger.com](https://www.peakbagger.com/peak.aspx?pid=1))."
)


def completion(content: Any = TEXT, *, annotations: list[Any] | None = None, finish: str = "stop",
               model: str = "gpt-4o-mini-search-preview-2025-03-11", **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None, "annotations": annotations or []},
            "logprobs": None,
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035",
    }
    body.update(top)
    return body


def url_citation(url: str, title: str, start: int | None, end: int | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"url": url, "title": title}
    if start is not None:
        inner["start_index"] = start
        inner["end_index"] = end if end is not None else start + 10
    return {"type": "url_citation", "url_citation": inner}


def spans(text: str, url: str) -> tuple[int, int]:
    """Where OpenAI's annotation for ``url`` sits: the ``([site](url))`` link after the sentence."""
    start = text.index(f"]({url}))") - 1
    start = text.rindex("([", 0, start + 1)
    return start, text.index("))", start) + 2


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[OpenAIChatProvider]:
    p = OpenAIChatProvider(chat_settings(model="gpt-4o-mini"))
    yield p
    await p.aclose()


# ---------------------------------------------------------------- the envelope


def test_plain_answer() -> None:
    a = parse(completion(), "req_abc")
    assert a.text == TEXT and a.model_version == "gpt-4o-mini-search-preview-2025-03-11"
    u = a.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.reported) == (1117, 46, 1163, True)
    assert a.request_id == "req_abc"
    assert a.metadata == {"response_id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "finish_reason": "stop"}
    assert a.citations == []  # links in the text alone are not sources
    assert parse(completion()).request_id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"  # no header: the body's id


def test_no_choices_is_malformed() -> None:
    for body in (completion(choices=[]), {k: v for k, v in completion().items() if k != "choices"},
                 completion(choices={"0": {}}), completion(choices=None)):
        with pytest.raises(MalformedResponse, match="response has no choices"):
            parse(body)
    not_objects: tuple[Any, ...] = ([], "chat", None)
    for not_object in not_objects:
        with pytest.raises(MalformedResponse, match="expected a JSON object"):
            parse(not_object)
    with pytest.raises(MalformedResponse, match="error in 200: upstream_error: Provider returned error") as info:
        parse({"id": "gen-1", "error": {"message": "Provider returned error", "code": 502, "type": "upstream_error"}})
    assert info.value.request_id == "gen-1"


def test_empty_answers() -> None:
    refused = completion(None)
    refused["choices"][0]["message"]["refusal"] = "I'm sorry, I can't help with that."
    with pytest.raises(PermanentError, match="refused: I'm sorry, I can't help with that."):
        parse(refused)
    with pytest.raises(PermanentError, match="refused: empty answer, finish_reason content_filter"):
        parse(completion(None, finish="content_filter"))
    with pytest.raises(PermanentError, match="refused"):
        parse(completion("", finish="content_filter"))
    with pytest.raises(PermanentError, match="empty answer: finish_reason length"):
        parse(completion("", finish="length"))
    with pytest.raises(MalformedResponse, match=r"content has no text \(finish_reason stop\)"):
        parse(completion(None))
    with pytest.raises(MalformedResponse, match=r"content is empty"):
        parse(completion("  \n"))
    with pytest.raises(MalformedResponse, match="content has no text"):
        parse(completion(42))
    # A refusal field beside a real answer does not refuse it.
    both = completion()
    both["choices"][0]["message"]["refusal"] = "no"
    assert parse(both).text == TEXT


def test_truncated_answer_is_kept_and_flagged() -> None:
    a = parse(completion(finish="length"))
    assert a.text == TEXT and a.metadata["truncated"] is True and a.metadata["finish_reason"] == "length"


def test_content_parts() -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
             {"type": "text", "text": "Mount "}, {"type": "text", "text": "Columbia."}]
    assert parse(completion(parts)).text == "Mount Columbia."


def test_nul_in_content_is_kept() -> None:
    text = "Mount\x00 Columbia ([wikipedia.org](https://en.wikipedia.org/wiki/Mount_Columbia))"
    start, end = spans(text, "https://en.wikipedia.org/wiki/Mount_Columbia")
    body = completion(text, annotations=[url_citation("https://en.wikipedia.org/wiki/Mount_Columbia",
                                                      "Mount\x00Columbia", start, end)])
    a = parse(body)
    assert a.text == text and a.citations[0].title == "Mount\x00Columbia"


def test_usage() -> None:
    assert read_usage({}).reported is False
    u = read_usage({"usage": {"prompt_tokens": 3, "completion_tokens": -1, "total_tokens": True}})
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.reported) == (3, None, None, True)
    env = read_envelope(completion(finish="stop"), None)
    assert env.finish_reason == "stop" and env.message["role"] == "assistant"


# ---------------------------------------------------------------- sources


def test_annotations_are_cited_in_text_order() -> None:
    wiki, peak = "https://en.wikipedia.org/wiki/Mount_Columbia", "https://www.peakbagger.com/peak.aspx?pid=1"
    (ws, we), (ps, pe) = spans(TEXT, wiki), spans(TEXT, peak)
    annotations = [
        url_citation(peak + "&utm_source=openai", "Mount Columbia - Peakbagger", ps, pe),  # listed first, cited second
        url_citation(wiki + "?utm_source=openai", "Mount Columbia - Wikipedia", ws, we),
        url_citation(wiki, "", ws, we),  # the same page again: one citation, title kept
        {"type": "file_citation", "file_citation": {"file_id": "f"}},  # not a web source
        {"type": "url_citation", "url": "https://flat.example/a", "title": "Flat"},  # Responses spelling, no index
        "garbage",
    ]
    a = parse(completion(annotations=annotations))
    assert [(c.url, c.domain, c.title, c.position, c.cited) for c in a.citations] == [
        (wiki, "en.wikipedia.org", "Mount Columbia - Wikipedia", 1, True),
        (peak, "peakbagger.com", "Mount Columbia - Peakbagger", 2, True),
        ("https://flat.example/a", "flat.example", "Flat", 3, True),  # no start_index: at the end of the text
    ]
    assert a.metadata["annotations"] == 4


def test_xai_citations_list() -> None:
    listed = [
        "https://www.alpinist.com/columbia",  # only retrieved
        "https://www.peakbagger.com/peak.aspx?pid=1",  # linked in the text: cited
        "https://en.wikipedia.org/wiki/Mount_Columbia",  # annotated and linked: cited
        "https://x.com/someone/status/1",  # only retrieved
        "https://www.peakbagger.com/peak.aspx?pid=1",  # listed twice: once
        42,
    ]
    wiki = "https://en.wikipedia.org/wiki/Mount_Columbia"
    ws, we = spans(TEXT, wiki)
    body = completion(annotations=[url_citation(wiki, "Wikipedia", ws, we)], model="grok-4-fast-non-reasoning",
                      citations=listed)
    body["usage"]["num_sources_used"] = 5
    a = parse(body)
    assert [(c.domain, c.position, c.cited) for c in a.citations] == [
        ("en.wikipedia.org", 1, True), ("peakbagger.com", 2, True),
        ("alpinist.com", 3, False), ("x.com", 4, False),
    ]
    assert a.citations[0].title == "Wikipedia"
    assert a.metadata["listed_citations"] == 5 and a.metadata["num_sources_used"] == 5
    assert "annotations" in a.metadata


def test_xai_markdown_and_bare_links() -> None:
    text = ("Columbia [[1]](https://www.alpinist.com/columbia?utm_source=grok) is 3,747 m. "
            "See https://en.wikipedia.org/wiki/Columbia_(mountain). Also (https://b.example/x).")
    listed = ["https://en.wikipedia.org/wiki/Columbia_(mountain)", "https://www.alpinist.com/columbia",
              "https://b.example/x/deeper", "https://c.example/"]
    a = parse(completion(text, citations=listed))
    assert [(c.domain, c.cited) for c in a.citations] == [
        ("alpinist.com", True), ("en.wikipedia.org", True), ("b.example", False), ("c.example", False),
    ]
    assert a.citations[1].url == "https://en.wikipedia.org/wiki/Columbia_(mountain)"


def test_linked_urls() -> None:
    text = "a ([x.com](https://x.com/a_(b))) b https://Y.com/c?utm_source=s, and https://z.com/d."
    assert linked_urls(text) == {"https://x.com/a_(b)": text.index("https://x.com"),
                                 "https://y.com/c": text.index("https://Y.com"),
                                 "https://z.com/d": text.index("https://z.com")}
    assert linked_urls("no links, just http:// and ftp://a.b") == {}


# ---------------------------------------------------------------- through the provider: cost and flags


def test_cost_from_the_table(provider: OpenAIChatProvider) -> None:
    r = provider.result(completion(), latency_ms=12, request_id="req_1")
    assert r.metadata["price_model"] == "gpt-4o-mini"  # gpt-4o-mini-search-preview-... by longest prefix
    assert r.cost == 1117 * Decimal("0.15") / M + 46 * Decimal("0.60") / M
    assert (r.input_tokens, r.output_tokens, r.total_tokens, r.latency_ms) == (1117, 46, 1163, 12)
    assert r.metadata["web_search"] is False and r.metadata["search"] == "none"
    assert r.raw["id"].startswith("chatcmpl-")
    json.dumps(r.metadata)


def test_unknown_model_and_missing_usage(provider: OpenAIChatProvider) -> None:
    r = provider.result(completion(model="grok-4-fast-non-reasoning"))
    # Reported model unknown, configured gpt-4o-mini known: priced as configured (as every platform does).
    assert r.metadata["price_model"] == "gpt-4o-mini"
    body = completion()
    del body["usage"]
    r = provider.result(body)
    assert r.input_tokens is None and r.output_tokens is None and r.total_tokens is None
    assert r.cost is None and r.metadata["usage_missing"] is True


async def test_unknown_model_is_price_unknown() -> None:
    p = OpenAIChatProvider(chat_settings(model="deepseek-chat"))
    try:
        r = p.result(completion(model="deepseek-chat"))
    finally:
        await p.aclose()
    assert r.cost is None and r.metadata["price_unknown"] is True and r.input_tokens == 1117


def test_errors_are_worded_by_the_provider(provider: OpenAIChatProvider) -> None:
    with pytest.raises(PermanentError) as info:
        provider.result(completion(None, finish="content_filter"), request_id="req_9")
    assert info.value.message == "grok: HTTP 200: refused: empty answer, finish_reason content_filter"
    assert info.value.status == 200 and info.value.request_id == "req_9"


# ---------------------------------------------------------------- fuzzing: a result or a classified error

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def check(provider: OpenAIChatProvider, body: Any) -> None:
    try:
        r = provider.result(body)
    except MalformedResponse as e:
        assert "\n" not in e.message
        return
    except PermanentError as e:
        assert "refused" in e.message or "empty answer" in e.message, e.message
        return
    assert isinstance(r, ProviderResult) and isinstance(r.text, str) and r.text.strip()
    assert [c.position for c in r.citations] == list(range(1, len(r.citations) + 1))
    assert len({c.url for c in r.citations}) == len(r.citations)
    assert r.cost is None or r.cost >= 0
    json.dumps(r.metadata)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


SEED = completion(annotations=[url_citation("https://en.wikipedia.org/wiki/Mount_Columbia", "W", 46)],
                  citations=["https://en.wikipedia.org/wiki/Mount_Columbia", "https://x.com/a"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_bodies(provider: OpenAIChatProvider, data: st.DataObject) -> None:
    body: Any = copy.deepcopy(SEED)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(_paths(body)))
        value = data.draw(json_values)
        if not path:
            body = value
            continue
        parent = body
        for p in path[:-1]:
            parent = parent[p]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    check(provider, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_fuzz_random_json(provider: OpenAIChatProvider, body: Any) -> None:
    check(provider, body)
