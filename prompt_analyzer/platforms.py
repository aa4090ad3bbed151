"""The registry: one declaration per platform, and one per kind of platform.

A **kind** is a wire format and the client that speaks it (``openai``: the Responses API; ``openai-chat``:
any OpenAI-compatible Chat Completions endpoint; ...).  A **platform** is a named thing the tool asks:
the four built-in platforms are declared below with their kind, key and base-URL variables and defaults;
any other platform is declared by configuration alone::

    [platforms.grok]
    kind = "openai-chat"
    base_url = "https://api.x.ai/v1"
    model = "grok-4-fast"
    api_key_env = "XAI_API_KEY"

Settings (:mod:`prompt_analyzer.config`), the client factory (:func:`prompt_analyzer.providers.make_provider`)
and the simulator's base URLs all read this module; adding a built-in platform is one entry in
``BUILTINS`` (and, for a new wire format, one entry in ``KINDS``).  Nothing here imports an SDK: clients
are imported when first made (the SDKs take about a second to import).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    client: str  # "module:Class", relative to prompt_analyzer.providers
    needs_base_url: bool = False  # True: there is no default endpoint (openai-chat)
    sim_path: str = ""  # the simulator's base path serving this wire format

    @property
    def module(self) -> str:
        """The client's module (importing it imports the kind's SDK)."""
        return f"prompt_analyzer.providers.{self.client.partition(':')[0]}"

    def client_class(self) -> Any:
        return getattr(importlib.import_module(self.module), self.client.partition(":")[2])


@dataclass(frozen=True)
class Builtin:
    name: str
    kind: str
    key_env: tuple[str, ...]  # the first one set wins (SDK-native names)
    base_url_env: str
    defaults: Mapping[str, Any] = field(default_factory=dict)  # model, rpm, in-flight limit, ...


KINDS: Mapping[str, Kind] = MappingProxyType({k.name: k for k in (
    Kind("openai", "openai_:OpenAIProvider", sim_path="/openai/v1"),
    Kind("gemini", "gemini:GeminiProvider", sim_path="/gemini/"),
    Kind("claude", "claude:ClaudeProvider", sim_path="/anthropic"),
    Kind("perplexity", "perplexity:PerplexityProvider", sim_path="/perplexity"),
    Kind("openai-chat", "openai_chat:OpenAIChatProvider", needs_base_url=True, sim_path="/openai-chat/v1"),
)})

# Conservative tier-1-ish paces for rpm = "auto" (the default) until the provider states its limit.
BUILTINS: Mapping[str, Builtin] = MappingProxyType({b.name: b for b in (
    Builtin("openai", "openai", ("OPENAI_API_KEY",), "OPENAI_BASE_URL",
            {"model": "gpt-4.1-mini", "auto_start_rpm": 500.0}),
    # google-genai prefers GOOGLE_API_KEY when both are set
    Builtin("gemini", "gemini", ("GOOGLE_API_KEY", "GEMINI_API_KEY"), "GOOGLE_GEMINI_BASE_URL",
            {"model": "gemini-2.5-flash-lite", "auto_start_rpm": 300.0}),
    Builtin("claude", "claude", ("ANTHROPIC_API_KEY",), "ANTHROPIC_BASE_URL",
            {"model": "claude-haiku-4-5", "auto_start_rpm": 50.0}),
    Builtin("perplexity", "perplexity", ("PERPLEXITY_API_KEY",), "PERPLEXITY_BASE_URL",
            {"model": "sonar-pro", "auto_start_rpm": 50.0}),
)})

# A platform of the user's own: its kind's conservative defaults until configured otherwise.
DECLARED_DEFAULTS: Mapping[str, Any] = MappingProxyType({"auto_start_rpm": 60.0})

BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTINS)


def kind(name: str) -> Kind:
    return KINDS[name]
