"""Perplexity Sonar: ``POST {base}/chat/completions`` with a ``sonar*`` model.

A Chat Completions dialect (built with :mod:`.openai_chat`): search is on unless ``disable_search``;
the text carries ``[n]`` marks, top-level ``citations`` / ``search_results`` list what was retrieved, and
``usage`` adds search counts and a ``cost`` breakdown with the per-request search fee.
"""

from __future__ import annotations

import uuid

from ..content import Answer, estimate_tokens
from ._perplexity import PerplexityErrors, numbered_text, usd
from .base import BadRequest, Call, Json, WireFormat, plain_text
from .openai_chat import chat_completion, chat_prompt, chat_usage

# (input, output) USD per million tokens; request fee per 1k requests by search context size.
_PRICES = {
    "sonar": ((1.0, 1.0), {"low": 5.0, "medium": 8.0, "high": 12.0}),
    "sonar-pro": ((3.0, 15.0), {"low": 6.0, "medium": 10.0, "high": 14.0}),
    "sonar-reasoning-pro": ((2.0, 8.0), {"low": 6.0, "medium": 10.0, "high": 14.0}),
}


class PerplexitySonar(PerplexityErrors):
    def parse(self, body: Json, path_model: str | None) -> Call:
        model, prompt = chat_prompt(body)
        opts = body.get("web_search_options") or {}
        size = opts.get("search_context_size", "low") if isinstance(opts, dict) else "low"
        if size not in ("low", "medium", "high"):
            raise BadRequest("search_context_size must be one of low, medium, high", "web_search_options")
        search = not body.get("disable_search", False)
        return Call(model, prompt, search, {"search_context_size": size})

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        text = numbered_text(ans)[0] if call.search else plain_text(ans)
        in_tok = estimate_tokens(call.prompt) + 4
        out_tok = estimate_tokens(text)
        size = call.extra.get("search_context_size", "low")
        (p_in, p_out), fees = _PRICES.get(call.model, _PRICES["sonar-pro"])
        in_cost = in_tok * p_in / 1e6
        out_cost = out_tok * p_out / 1e6
        req_cost = fees[size] / 1000 if call.search else 0.0
        usage = chat_usage(
            in_tok,
            out_tok,
            num_search_queries=1 if call.search else 0,
            search_context_size=size,
            cost={
                "input_tokens_cost": usd(in_cost),
                "output_tokens_cost": usd(out_cost),
                "request_cost": usd(req_cost),
                "total_cost": usd(in_cost + out_cost + req_cost),
            },
        )
        body = chat_completion(
            call.model,
            {"role": "assistant", "content": text},
            usage,
            completion_id=str(uuid.uuid4()),
            choice={"delta": {"role": "assistant", "content": ""}},
        )
        if call.search:
            body["citations"] = [s.url for s in ans.sources]
            body["search_results"] = [
                {"title": s.title, "url": s.url, "date": s.date, "last_updated": s.date, "snippet": s.snippet,
                 "source": "web"}
                for s in ans.sources
            ]
        return body

    def failed(self, call: Call, request_id: str) -> Json:
        # No status field in chat completions: an empty choice list is the closest "200 but unusable".
        return chat_completion(call.model, {}, None, completion_id=str(uuid.uuid4()), choices=[])


FORMAT: WireFormat = PerplexitySonar()
