"""The providers' batch APIs as the simulator serves them, one module per API beside the live formats.

==================  ==================================================================  ========
module              API                                                                 platform
==================  ==================================================================  ========
:mod:`.openai`      OpenAI Batch (``/files``, ``/batches``, output/error JSONL files)  openai
:mod:`.anthropic`   Anthropic Message Batches (``/v1/messages/batches``, results JSONL)  claude
:mod:`.gemini`      Gemini Batch Mode (``models/*:batchGenerateContent``, inline)       gemini
==================  ==================================================================  ========

Each request of a batch is answered by the live wire format of :mod:`..formats` (same bodies, same
faults); :mod:`.core` holds the jobs and their clock.  ``_sim/stats`` counts ``batch_creates`` and
``batch_requests`` per platform, so a test can prove a batch was not submitted twice.
"""

from __future__ import annotations

from aiohttp import web

from . import anthropic, gemini, openai
from .core import BOOK_KEY, Book, StateOf

__all__ = ["gemini", "register"]


def register(app: web.Application, state_of: StateOf) -> None:
    """Add every batch API's routes to the simulator app."""
    app[BOOK_KEY] = Book()
    openai.register(app, state_of)
    anthropic.register(app, state_of)
    gemini.register(app, state_of)
