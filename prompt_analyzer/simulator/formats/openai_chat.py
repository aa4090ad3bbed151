"""OpenAI-compatible Chat Completions: ``POST {base}/chat/completions`` (``client.chat.completions.create``),
as OpenAI, xAI, DeepSeek, Mistral, OpenRouter and vLLM / llama.cpp servers serve it (platform ``openai-chat``).

The shape (``messages`` in; ``choices[].message``, ``usage.prompt_tokens`` out) is built here once;
Perplexity Sonar is a Chat Completions dialect and builds its bodies with the same functions.

Web search, where an endpoint offers it, comes in two request spellings:

* ``web_search_options`` (OpenAI's search models): the message carries
  ``annotations: [{"type": "url_citation", "url_citation": {url, title, start_index, end_index}}]``, each
  span covering an inline ``([domain](url))`` link in the text.
* ``search_parameters`` (xAI Live Search, ``mode`` ``on`` / ``auto`` / ``off``, ``return_citations``):
  a top-level ``citations: [url, ...]`` lists every source consulted, cited in the text or not, and
  ``usage.num_sources_used`` counts them.

Errors, 429 hints and rate-limit headers are OpenAI's (:mod:`._openai`).
"""

from __future__ import annotations

import time
from typing import Any

from ..content import Answer, estimate_tokens
from ._openai import DATED_MODELS, OpenAIErrors, linked_text
from .base import BadRequest, Call, Json, WireFormat, dated, last_user_text, new_id, plain_text, require_model

_CONTEXT_SIZES = ("low", "medium", "high")
_LIVE_SEARCH_MODES = ("on", "auto", "off")


def chat_prompt(body: Json) -> tuple[str, str]:
    """(model, prompt) of a Chat Completions request: the text of the last user message."""
    model = require_model(body)
    return model, last_user_text(body.get("messages"), "messages")


def chat_usage(prompt_tokens: int, completion_tokens: int, **fields: Any) -> Json:
    usage: Json = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    usage.update(fields)
    return usage


def chat_completion(model: str, message: Json, usage: Json | None, *, completion_id: str | None = None,
                    finish_reason: str = "stop", choice: Json | None = None, **fields: Any) -> Json:
    """A ``chat.completion`` with one choice holding ``message``.

    ``choice`` adds fields to the choice, ``fields`` adds or overrides top-level fields.
    """
    body: Json = {
        "id": completion_id or f"chatcmpl-{new_id(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **(choice or {})}],
        "usage": usage,
    }
    body.update(fields)
    return body


def _options(body: Json, name: str) -> Json | None:
    """An optional object parameter: None when absent, else it must be a JSON object."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid type for '{name}': expected an object, but got {type(value).__name__}.", name)
    return value


class OpenAIChat(OpenAIErrors):
    platform = "openai-chat"

    def parse(self, body: Json, path_model: str | None) -> Call:
        model, prompt = chat_prompt(body)
        if body.get("stream"):
            raise BadRequest("The simulator answers non-streaming requests only ('stream' must be false).", "stream")
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise BadRequest(f"Invalid '{name}': expected an integer >= 1, but got {value!r}.", name)
        web = _options(body, "web_search_options")
        size = (web or {}).get("search_context_size", "medium")
        if size not in _CONTEXT_SIZES:
            raise BadRequest(
                f"Invalid value: {size!r}. Supported values are: 'low', 'medium', and 'high'.",
                "web_search_options.search_context_size",
            )
        live = _options(body, "search_parameters")
        mode = (live or {}).get("mode", "auto")
        if mode not in _LIVE_SEARCH_MODES:
            raise BadRequest(f"search_parameters.mode must be one of on, auto, off; got {mode!r}", "search_parameters")
        live_search = live is not None and mode != "off"
        extra = {
            "annotations": web is not None,
            "citations": live_search and (live or {}).get("return_citations", True) is not False,
            "live_search": live_search,
            "search_context_size": size,
        }
        return Call(model, prompt, web is not None or live_search, extra)

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        annotations: list[Json] = []
        if call.extra.get("annotations"):
            text, spans = linked_text(ans)
            for s in spans:
                src = ans.sources[s.source]
                annotations.append({
                    "type": "url_citation",
                    "url_citation": {"url": src.url, "title": src.title, "start_index": s.start, "end_index": s.end},
                })
        else:
            text = plain_text(ans)
        usage = chat_usage(
            estimate_tokens(call.prompt) + 8,
            estimate_tokens(text),
            prompt_tokens_details={"cached_tokens": 0},
            completion_tokens_details={"reasoning_tokens": 0},
        )
        if call.extra.get("live_search"):
            usage["num_sources_used"] = len(ans.sources)
        body = chat_completion(
            dated(call.model, DATED_MODELS, ""),
            {"role": "assistant", "content": text, "refusal": None, "annotations": annotations},
            usage,
            choice={"logprobs": None},
            service_tier="default",
            system_fingerprint="fp_simulator",
        )
        if call.extra.get("citations"):
            body["citations"] = [s.url for s in ans.sources]
        return body

    def failed(self, call: Call, request_id: str) -> Json:
        # Chat Completions has no failed status: a filtered choice with no content is its 200-but-unusable.
        return chat_completion(
            dated(call.model, DATED_MODELS, ""),
            {"role": "assistant", "content": None, "refusal": None, "annotations": []},
            chat_usage(estimate_tokens(call.prompt) + 8, 0),
            finish_reason="content_filter",
            choice={"logprobs": None},
        )


FORMAT: WireFormat = OpenAIChat()
