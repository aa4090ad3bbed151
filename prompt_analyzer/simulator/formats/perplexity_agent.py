"""Perplexity Agent API: ``POST {base}/v1/agent`` and its Responses-compatible alias ``{base}/v1/responses``.

Built with the Responses shape of :mod:`.openai_responses`; what differs is Perplexity's: ``model`` or a
``preset``, a ``search_results`` output item for what was retrieved, ``[n]`` marks as the cited spans, and
``usage.cost``.
"""

from __future__ import annotations

from ..content import Answer, estimate_tokens
from ._perplexity import PerplexityErrors, numbered_text, usd
from .base import BadRequest, Call, Json, WireFormat, plain_text
from .openai_responses import (
    failed_response,
    message_item,
    parse_input,
    response_body,
    response_usage,
    url_citation,
    wants_web_search,
)


class PerplexityAgent(PerplexityErrors):
    def parse(self, body: Json, path_model: str | None) -> Call:
        model = body.get("model")
        preset = body.get("preset")
        if not (isinstance(model, str) and model) and not (isinstance(preset, str) and preset):
            raise BadRequest("one of 'model' or 'preset' is required", "model")
        prompt = parse_input(body)
        search = bool(preset) or wants_web_search(body.get("tools") or [])
        shown = model if isinstance(model, str) and model else "perplexity/sonar"
        return Call(shown, prompt, search, {"preset": preset})

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        output: list[Json] = []
        annotations: list[Json] = []
        if call.search:
            text, spans = numbered_text(ans)
            annotations = [url_citation(ans.sources[s.source], s) for s in spans]
            output.append(
                {
                    "type": "search_results",
                    "queries": list(ans.queries),
                    "results": [
                        {"id": i + 1, "url": s.url, "title": s.title, "snippet": s.snippet, "date": s.date,
                         "last_updated": s.date, "source": "web"}
                        for i, s in enumerate(ans.sources)
                    ],
                }
            )
        else:
            text = plain_text(ans)
        output.append(message_item(text, annotations))
        usage = response_usage(estimate_tokens(call.prompt) + 800, estimate_tokens(text))
        in_cost = usage["input_tokens"] * 0.25 / 1e6
        out_cost = usage["output_tokens"] * 2.0 / 1e6
        tool_cost = 0.005 if call.search else 0.0
        usage["cost"] = {
            "currency": "USD",
            "input_cost": usd(in_cost),
            "output_cost": usd(out_cost),
            "tool_calls_cost": tool_cost,
            "tool_calls_cost_details": {"search_web": tool_cost} if call.search else {},
            "total_cost": usd(in_cost + out_cost + tool_cost),
        }
        if call.search:
            usage["tool_calls_details"] = {"search_web": {"invocation": 1, "cost_usd": tool_cost}}
        return response_body(call.model, output, usage)

    def failed(self, call: Call, request_id: str) -> Json:
        return failed_response(call.model, "internal_error", "The agent run failed.")


FORMAT: WireFormat = PerplexityAgent()
