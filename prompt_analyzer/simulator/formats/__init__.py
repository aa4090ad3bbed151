"""The providers' wire formats, one module each, all behind :class:`.base.WireFormat`.

========================  ==========================================================  ===========
module                    API                                                         platform
========================  ==========================================================  ===========
:mod:`.openai_responses`  OpenAI Responses (``/responses``)                           openai
:mod:`.anthropic`         Anthropic Messages (``/v1/messages``)                       claude
:mod:`.gemini`            Gemini ``models/{model}:generateContent``                   gemini
:mod:`.perplexity_sonar`  Perplexity Sonar (``/chat/completions``)                    perplexity
:mod:`.perplexity_agent`  Perplexity Agent (``/v1/agent``, ``/v1/responses``)         perplexity
:mod:`.openai_chat`       OpenAI-compatible Chat Completions (``/chat/completions``)  openai-chat
========================  ==========================================================  ===========

Shapes shared between APIs live once: the Responses shape in :mod:`.openai_responses` (also used by the
Agent API), the Chat Completions shape in :mod:`.openai_chat` (also used by Sonar), OpenAI's and Perplexity's
error, auth and rate-limit conventions in :mod:`._openai` and :mod:`._perplexity`.
"""

from . import anthropic, gemini, openai_chat, openai_responses, perplexity_agent, perplexity_sonar
from .base import BadRequest, Call, Quota, WireFormat

# Every served format, by module name.
FORMATS: dict[str, WireFormat] = {
    "openai_responses": openai_responses.FORMAT,
    "anthropic": anthropic.FORMAT,
    "gemini": gemini.FORMAT,
    "perplexity_sonar": perplexity_sonar.FORMAT,
    "perplexity_agent": perplexity_agent.FORMAT,
    "openai_chat": openai_chat.FORMAT,
}

__all__ = ["FORMATS", "BadRequest", "Call", "Quota", "WireFormat"]
