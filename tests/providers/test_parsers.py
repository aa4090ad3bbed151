"""Response parsers: edge cases by hand, then hypothesis fuzzing (random and mutated real bodies).

Contract: whatever JSON arrives, a parser returns a well-formed ProviderResult or raises
MalformedResponse (PermanentError only for an explicit refusal/block); never anything else.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompt_analyzer.providers import (
    MalformedResponse,
    PermanentError,
    ProviderResult,
)

from .helpers import load_payload, offline_provider

Reader = Callable[[Any], ProviderResult]


# What ask() does with a decoded 200 body (parse, cost, flags), per wire format.
PARSERS: dict[str, tuple[Reader, str]] = {
    "openai": (offline_provider("openai").result, "openai-responses-web-search.json"),
    "openai-plain": (offline_provider("openai").result, "openai-responses-plain.json"),
    "claude": (offline_provider("claude").result, "anthropic-web-search.json"),
    "gemini": (offline_provider("gemini", model="gemini-2.5-flash").result, "gemini-grounding.json"),
    "sonar": (offline_provider("perplexity").result, "perplexity-sonar-docs-example.json"),
    "agent": (offline_provider("perplexity", api="agent").result, "perplexity-agent-responses.json"),
}


def check_result(r: ProviderResult) -> None:
    assert isinstance(r, ProviderResult)
    assert isinstance(r.text, str)
    for v in (r.input_tokens, r.output_tokens, r.total_tokens):
        assert v is None or (isinstance(v, int) and v >= 0)
    assert r.cost is None or (isinstance(r.cost, Decimal) and r.cost >= 0)
    assert [c.position for c in r.citations] == list(range(1, len(r.citations) + 1))
    assert len({c.url for c in r.citations}) == len(r.citations)
    for c in r.citations:
        assert isinstance(c.url, str) and c.url and isinstance(c.domain, str)
    if r.metadata.get("usage_missing"):
        assert r.cost is None
    json.dumps(r.metadata)  # metadata is stored as JSON


def run(read: Reader, body: Any) -> None:
    try:
        r = read(body)
    except MalformedResponse as e:
        assert "\n" not in e.message
        return
    except PermanentError as e:
        assert any(w in e.message for w in ("refusal", "blocked", "run failed", "empty answer")), e.message
        return
    check_result(r)


# ---------------------------------------------------------------- hand-picked cases


def test_usage_missing() -> None:
    for name in PARSERS:
        read, payload = PARSERS[name]
        body = load_payload(payload)
        body.pop("usage", None)
        body.pop("usageMetadata", None)
        r = read(body)
        assert r.input_tokens is None and r.output_tokens is None and r.total_tokens is None, name
        assert r.cost is None and r.metadata["usage_missing"] is True, name


def test_one_megabyte_answer_intact() -> None:
    big = ("Paris " * 200_000)[:1_048_576] + "é"
    body = load_payload("openai-responses-plain.json")
    body["output"][0]["content"][0]["text"] = big
    assert offline_provider("openai").result(body).text == big
    body = load_payload("anthropic-plain.json")
    body["content"][0]["text"] = big
    assert offline_provider("claude").result(body).text == big
    body = load_payload("gemini-plain.json")
    body["candidates"][0]["content"]["parts"][0]["text"] = big
    assert offline_provider("gemini").result(body).text == big
    body = load_payload("perplexity-sonar-docs-example.json")
    body["choices"][0]["message"]["content"] = big
    assert offline_provider("perplexity").result(body).text == big


# ---------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_fuzz_random_json(name: str, body: Any) -> None:
    read, _ = PARSERS[name]
    run(read, body)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(body: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = body
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return body


@pytest.mark.parametrize("name", list(PARSERS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_real_bodies(name: str, data: st.DataObject) -> None:
    read, payload = PARSERS[name]
    body = copy.deepcopy(load_payload(payload))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(body)
        path = data.draw(st.sampled_from(paths))
        body = _mutate(body, path, data.draw(json_values), delete=bool(path) and data.draw(st.booleans()))
    run(read, body)

