"""Regenerate the vcrpy cassettes in ``cassettes/`` from the recorded bodies in ``payloads/``.

Run from the repository root: ``.venv/bin/python tests/providers/make_cassettes.py``.
Each cassette holds one interaction: the request our provider module sends (no credentials: the
auth headers are never written) and the recorded response body, byte-for-byte as compact JSON.
Response headers other than those in a payload file are synthetic (content type, a request id).
``test_cassettes.py::test_cassettes_are_generated_from_payloads`` fails if the files drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
PAYLOADS = HERE / "payloads"
CASSETTES = HERE / "cassettes"

PROMPT = "What is the tallest mountain in Alberta?"
MAX_TOKENS = 2048

# Headers a cassette must never carry (vcr's filter_headers list in the tests says the same).
SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
# Headers of the 429 payloads that describe a different body than the one we store.
_DROP_429 = {"content-length", "connection", "set-cookie"}

OPENAI = "https://api.openai.com/v1/responses"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
# google-genai 3.x calls v1 by default (these bodies were recorded on v1beta).
GEMINI = "https://generativelanguage.googleapis.com/v1/models/{model}:generateContent"
PPLX_SONAR = "https://api.perplexity.ai/chat/completions"
PPLX_AGENT = "https://api.perplexity.ai/v1/agent"


def _openai_req(model: str, web: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": PROMPT}
    if web:
        body["tools"] = [{"type": "web_search"}]
    body["max_output_tokens"] = MAX_TOKENS
    return body


def _claude_req(model: str, web: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if web:
        body["tools"] = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    return body


def _gemini_req(web: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contents": [{"parts": [{"text": PROMPT}], "role": "user"}],
        "generationConfig": {"maxOutputTokens": MAX_TOKENS},
    }
    if web:
        body["tools"] = [{"googleSearch": {}}]
    return body


# name -> (payload file, request uri, request body, extra response headers)
SPECS: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "openai-web-search": (
        "openai-responses-web-search.json", OPENAI, _openai_req("gpt-4.1-mini", True),
        {"x-request-id": "req_vcr_openai_web_search"},
    ),
    "openai-plain": (
        "openai-responses-plain.json", OPENAI, _openai_req("gpt-4.1-mini", False),
        {"x-request-id": "req_vcr_openai_plain"},
    ),
    "openai-429": ("openai-429.json", OPENAI, _openai_req("gpt-4.1-mini", True), {}),
    "claude-web-search": (
        "anthropic-web-search.json", ANTHROPIC, _claude_req("claude-haiku-4-5", True),
        {"request-id": "req_vcr_claude_web_search"},
    ),
    "claude-plain": (
        "anthropic-plain.json", ANTHROPIC, _claude_req("claude-haiku-4-5", False),
        {"request-id": "req_vcr_claude_plain"},
    ),
    "claude-429": ("anthropic-429.json", ANTHROPIC, _claude_req("claude-haiku-4-5", True), {}),
    "gemini-grounding": (
        "gemini-grounding.json", GEMINI.format(model="gemini-2.5-pro"), _gemini_req(True), {},
    ),
    "gemini-plain": ("gemini-plain.json", GEMINI.format(model="gemini-2.5-flash"), _gemini_req(False), {}),
    "gemini-429": ("gemini-429.json", GEMINI.format(model="gemini-2.5-flash"), _gemini_req(True), {}),
    "perplexity-agent": (
        "perplexity-agent-responses.json", PPLX_AGENT,
        {"input": PROMPT, "preset": "fast", "tools": [{"type": "web_search"}], "max_output_tokens": MAX_TOKENS},
        {},
    ),
    "perplexity-sonar": (
        "perplexity-sonar-docs-example.json", PPLX_SONAR,
        {
            "model": "sonar-pro",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
            "web_search_options": {"search_context_size": "low"},
        },
        {},
    ),
}


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def build_cassette(name: str) -> str:
    """The YAML text of one cassette."""
    payload_file, uri, req_body, extra = SPECS[name]
    payload = json.loads((PAYLOADS / payload_file).read_text(encoding="utf-8"))
    if "status" in payload and "body" in payload and isinstance(payload.get("status"), int):
        status = payload["status"]
        body = payload["body"]
        headers = {k: [v] for k, v in (payload.get("headers") or {}).items() if k.lower() not in _DROP_429}
        headers["content-type"] = ["application/json"]
        message = "Too Many Requests"
    else:
        status, body, message = 200, payload, "OK"
        headers = {"content-type": ["application/json"]}
    for k, v in extra.items():
        headers[k] = [v]
    assert not any(h.lower() in SECRET_HEADERS for h in headers)
    cassette = {
        "interactions": [
            {
                "request": {
                    "body": _compact(req_body),
                    "headers": {"content-type": ["application/json"]},
                    "method": "POST",
                    "uri": uri,
                },
                "response": {
                    "status": {"code": status, "message": message},
                    "headers": headers,
                    "body": {"string": _compact(body)},
                },
            }
        ],
        "version": 1,
    }
    head = (
        f"# Generated by tests/providers/make_cassettes.py from tests/providers/payloads/{payload_file}\n"
        "# (provenance: tests/providers/payloads/README.md). Do not edit by hand.\n"
    )
    if name == "perplexity-sonar":
        head += (
            "# NOT a recording: the body follows the response schema of Perplexity's API reference,\n"
            "# https://perplexity.mintlify.app/api-reference (POST /chat/completions example; schema with\n"
            "# usage.cost and search_results: https://docs.perplexity.ai/api-reference/async-sonar-api-request-get);\n"
            "# the reference shows placeholder values, the concrete values were filled in by us.\n"
        )
    return head + yaml.safe_dump(cassette, allow_unicode=True, sort_keys=False, width=1 << 20)


def main() -> int:
    CASSETTES.mkdir(exist_ok=True)
    for name in SPECS:
        (CASSETTES / f"{name}.yaml").write_text(build_cassette(name), encoding="utf-8")
        print(f"wrote cassettes/{name}.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
