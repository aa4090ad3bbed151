"""Local stand-in for the four providers' APIs and any OpenAI-compatible Chat Completions endpoint, for
``analyze demo``, benchmarks and tests.

It speaks each provider's wire format closely enough that the official SDKs parse its answers, and
enforces quotas, latency and faults the way the real services do, so the engine can be exercised at
scale without keys or cost.  Start it with :func:`start_simulator` or ``python -m prompt_analyzer.simulator``.

Routes (``RunningSimulator.base_urls`` gives each client its base URL)::

    POST /openai/v1/responses                          openai     base {root}/openai/v1
    POST /anthropic/v1/messages                        claude     base {root}/anthropic
    POST /gemini/{v1|v1beta}/models/{model}:generateContent
                                                       gemini     HttpOptions(base_url={root}/gemini/)
    POST /perplexity/chat/completions                  perplexity base {root}/perplexity (Sonar)
    POST /perplexity/v1/agent, /perplexity/v1/responses           (Agent API)
    POST /openai-chat/v1/chat/completions              openai-chat base {root}/openai-chat/v1
                                                       (xAI, DeepSeek, Mistral, OpenRouter, vLLM style)
    GET /_sim/health, GET /_sim/stats, POST /_sim/reset, GET|PUT /_sim/config

Faults per request, anywhere in the prompt text: ``[[sim:fault=KIND]]`` (every platform) or
``[[sim:PLATFORM:fault=KIND]]`` (one platform; the platform-specific marker wins), optionally ``xN``
(``[[sim:fault=500x2]]``: only the first N calls of that platform and prompt fail).  KIND is one of
500, 503, 429, hang, reset, malformed, failed, 401, 400, and the hostile answers nul, hugeusage.
The wire formats are :mod:`.formats`, one module per API behind the ``WireFormat`` protocol.
"""

from .config import FAULT_KINDS, PROFILES, SIM_PLATFORMS, PlatformSim, SimulatorConfig, SimulatorConfigError
from .content import prompt_hash
from .server import BASE_PATHS, RunningSimulator, build_app, start_simulator

__all__ = [
    "BASE_PATHS",
    "FAULT_KINDS",
    "PROFILES",
    "SIM_PLATFORMS",
    "PlatformSim",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorConfigError",
    "build_app",
    "prompt_hash",
    "start_simulator",
]
