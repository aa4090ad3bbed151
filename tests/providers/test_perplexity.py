"""The Perplexity client: the request each API gets, and which parser reads the answer (no network).

Its HTTP statuses and transport errors are exercised over real HTTP in test_against_simulator.py.
"""

from __future__ import annotations

from prompt_analyzer.providers.perplexity import AGENT_PATH, SONAR_PATH, PerplexityProvider

from .helpers import load_payload, offline_provider


def provider(**changes: object) -> PerplexityProvider:
    p = offline_provider("perplexity", **changes)
    assert isinstance(p, PerplexityProvider)
    return p


def test_sonar_request() -> None:
    path, body = provider(model="sonar-pro", search_context_size="low", max_tokens=99)._payload("q")
    assert path == SONAR_PATH
    assert body == {"model": "sonar-pro", "messages": [{"role": "user", "content": "q"}], "max_tokens": 99,
                    "web_search_options": {"search_context_size": "low"}}
    _, body = provider(web_search=False)._payload("q")
    assert body["disable_search"] is True and "web_search_options" not in body


def test_agent_request_model_or_preset() -> None:
    path, body = provider(api="agent", model="openai/gpt-5-mini", max_tokens=70)._payload("q")
    assert path == AGENT_PATH
    assert body == {"input": "q", "model": "openai/gpt-5-mini", "tools": [{"type": "web_search"}],
                    "max_output_tokens": 70}
    for model in ("preset:fast", "preset/fast"):
        _, body = provider(api="agent", model=model, web_search=False, max_tokens=50)._payload("q")
        assert body == {"input": "q", "preset": "fast", "max_output_tokens": 50}


def test_each_api_has_its_parser() -> None:
    assert provider().api == "sonar" and provider(api="agent").api == "agent"
    assert provider().result(load_payload("perplexity-sonar-docs-example.json")).metadata["api"] == "sonar"
    agent = provider(api="agent").result(load_payload("perplexity-agent-responses.json"))
    assert agent.metadata["api"] == "agent"
