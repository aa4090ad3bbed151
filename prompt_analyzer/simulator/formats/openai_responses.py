"""OpenAI Responses API: ``POST {base}/responses`` (``client.responses.create``).

The Responses shape (``input``, ``tools=[{"type": "web_search"}]``, ``output[]`` items, a ``message`` whose
``output_text`` carries ``url_citation`` annotations, ``usage.input_tokens``) is built here once; the
Perplexity Agent API is Responses-compatible and builds its bodies with the same functions.
"""

from __future__ import annotations

import time
from typing import Any

from ..content import Answer, Source, estimate_tokens
from ._openai import DATED_MODELS, OpenAIErrors, linked_text
from .base import BadRequest, Call, Json, Span, WireFormat, dated, last_user_text, new_id, plain_text, require_model

# --------------------------------------------------------------------------- the Responses shape (shared)


def parse_input(body: Json) -> str:
    """The prompt of ``input``: a string, or the last user message of a list of messages."""
    raw = body.get("input")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return last_user_text(raw, "input")
    raise BadRequest("Missing required parameter: 'input'.", "input")


def wants_web_search(tools: Any) -> bool:
    """Whether ``tools`` holds a web search tool (``web_search``, ``web_search_preview``, dated variants)."""
    return isinstance(tools, list) and any(
        isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools
    )


def url_citation(src: Source, span: Span) -> Json:
    return {"type": "url_citation", "start_index": span.start, "end_index": span.end, "title": src.title,
            "url": src.url}


def message_item(text: str, annotations: list[Json]) -> Json:
    """The assistant ``message`` output item holding the answer text and what it cites."""
    return {
        "id": f"msg_{new_id(24)}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}],
    }


def response_usage(input_tokens: int, output_tokens: int) -> Json:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def response_body(model: str, output: list[Json], usage: Json, **fields: Any) -> Json:
    """A completed ``response`` object; ``fields`` adds or overrides top-level fields."""
    now = int(time.time())
    body: Json = {
        "id": f"resp_{new_id(24)}",
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "usage": usage,
        "metadata": {},
    }
    body.update(fields)
    return body


def failed_response(model: str, code: str, message: str, **fields: Any) -> Json:
    """HTTP 200 with ``status: "failed"``: how both Responses APIs report a run that produced nothing."""
    body: Json = {
        "id": f"resp_{new_id(24)}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed",
        "error": {"code": code, "message": message},
        "incomplete_details": None,
        "model": model,
        "output": [],
        "usage": None,
        "metadata": {},
    }
    body.update(fields)
    return body


# --------------------------------------------------------------------------- OpenAI's own


class OpenAIResponses(OpenAIErrors):
    platform = "openai"

    def parse(self, body: Json, path_model: str | None) -> Call:
        model = require_model(body)
        prompt = parse_input(body)
        tools = body.get("tools") or []
        return Call(model, prompt, wants_web_search(tools), {"tools": tools, "instructions": body.get("instructions")})

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        output: list[Json] = []
        annotations: list[Json] = []
        if call.search:
            text, spans = linked_text(ans)
            annotations = [url_citation(ans.sources[s.source], s) for s in spans]
            output.append(
                {
                    "id": f"ws_{new_id(24)}",
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {
                        "type": "search",
                        "query": ans.queries[0],
                        "queries": list(ans.queries),
                        "sources": [{"type": "url", "url": s.url} for s in ans.sources],
                    },
                }
            )
        else:
            text = plain_text(ans)
        output.append(message_item(text, annotations))
        tools = [
            {
                "type": t.get("type", "web_search"),
                "filters": None,
                "search_context_size": t.get("search_context_size", "medium"),
                "user_location": None,
            }
            for t in call.extra.get("tools", [])
            if isinstance(t, dict)
        ]
        usage = response_usage(estimate_tokens(call.prompt) + 8, estimate_tokens(text))
        return response_body(
            dated(call.model, DATED_MODELS, "-2025-04-14"),
            output,
            usage,
            background=False,
            instructions=call.extra.get("instructions"),
            max_output_tokens=None,
            max_tool_calls=None,
            parallel_tool_calls=True,
            previous_response_id=None,
            reasoning={"effort": None, "summary": None},
            service_tier="default",
            store=True,
            temperature=1.0,
            text={"format": {"type": "text"}, "verbosity": "medium"},
            tool_choice="auto",
            tools=tools,
            top_p=1.0,
            truncation="disabled",
            user=None,
        )

    def failed(self, call: Call, request_id: str) -> Json:
        return failed_response(
            dated(call.model, DATED_MODELS, "-2025-04-14"),
            "server_error",
            "The model failed to generate a response.",
            parallel_tool_calls=True,
            tool_choice="auto",
            tools=[],
        )


FORMAT: WireFormat = OpenAIResponses()
