"""Helpers shared by the simulator tests (raw requests shaped like each SDK sends them)."""

from __future__ import annotations

from typing import Any

from prompt_analyzer.simulator import RunningSimulator

PROMPT = "Which CRM suits a small café — and why?"

KEYS = {"openai": "sk-test-0123456789abcdef", "claude": "sk-ant-test-0123456789", "gemini": "AIza-test",
        "perplexity": "pplx-test", "openai-chat": "xai-test-0123456789"}


def raw_request(sim: RunningSimulator, api: str, prompt: str, *, search: bool = True,
                key: str | None = "default") -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, json body) of a minimal valid request to ``api``, authenticated like its SDK."""
    if api == "openai":
        k = KEYS["openai"] if key == "default" else key
        body: dict[str, Any] = {"model": "gpt-4.1-mini", "input": prompt}
        if search:
            body["tools"] = [{"type": "web_search"}]
        return sim.base_urls["openai"] + "/responses", ({"Authorization": f"Bearer {k}"} if k else {}), body
    if api == "claude":
        k = KEYS["claude"] if key == "default" else key
        body = {"model": "claude-haiku-4-5", "max_tokens": 512, "messages": [{"role": "user", "content": prompt}]}
        if search:
            body["tools"] = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
        return sim.base_urls["claude"] + "/v1/messages", ({"x-api-key": k} if k else {}), body
    if api == "gemini":
        k = KEYS["gemini"] if key == "default" else key
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if search:
            body["tools"] = [{"googleSearch": {}}]
        url = sim.base_urls["gemini"] + "v1beta/models/gemini-2.5-flash-lite:generateContent"
        return url, ({"x-goog-api-key": k} if k else {}), body
    if api == "openai-chat":
        k = KEYS["openai-chat"] if key == "default" else key
        body = {"model": "grok-4-fast", "messages": [{"role": "user", "content": prompt}]}
        if search:
            body["web_search_options"] = {}
        return sim.base_urls["openai-chat"] + "/chat/completions", ({"Authorization": f"Bearer {k}"} if k else {}), body
    k = KEYS["perplexity"] if key == "default" else key
    headers = {"Authorization": f"Bearer {k}"} if k else {}
    if api == "sonar":
        body = {"model": "sonar-pro", "messages": [{"role": "user", "content": prompt}]}
        return sim.base_urls["perplexity"] + "/chat/completions", headers, body
    body = {"model": "openai/gpt-5-mini", "input": prompt}
    if search:
        body["tools"] = [{"type": "web_search"}]
    return sim.base_urls["perplexity"] + "/v1/agent", headers, body


PLATFORM_OF = {"openai": "openai", "claude": "claude", "gemini": "gemini", "sonar": "perplexity", "agent": "perplexity",
               "openai-chat": "openai-chat"}
APIS = tuple(PLATFORM_OF)
