"""Chat Completions: ``POST {base}/chat/completions`` (``client.chat.completions.create``).

The shape (``messages`` in; ``choices[].message``, ``usage.prompt_tokens`` out) is built here once;
Perplexity Sonar is a Chat Completions dialect and builds its bodies with the same functions.
"""

from __future__ import annotations

import time
from typing import Any

from .base import Json, last_user_text, new_id, require_model


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
