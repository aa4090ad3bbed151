"""The aiohttp app that plays OpenAI, Anthropic, Gemini, Perplexity and OpenAI-compatible Chat Completions
endpoints, plus its control endpoints.

Per request the work is O(1) apart from building the answer: a dict lookup for the limiter, a couple
of counters, one optional regex for ``[[sim:...]]`` markers, so thousands of concurrent connections
are fine.  Order of checks mirrors the real services: auth, request validation, quota, then
(injected) faults, latency and the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..platforms import KINDS
from . import batches
from .config import FAULT_KINDS, SIM_PLATFORMS, PlatformSim, SimulatorConfig, SimulatorConfigError
from .content import estimate_tokens, make_answer, prompt_hash
from .formats import anthropic, gemini, openai_chat, openai_responses, perplexity_agent, perplexity_sonar
from .formats.base import BadRequest, Call, WireFormat, new_id
from .ratelimit import PlatformLimiter

log = logging.getLogger(__name__)

HANG_S = 3600.0  # far beyond any client timeout: a "hang" never answers in practice

# Base URL paths each official client is pointed at (appended to the server root).
# The base path serving each kind of platform, as the registry declares it (the clients are pointed there).
BASE_PATHS: dict[str, str] = {name: kind.sim_path for name, kind in KINDS.items()}

_ALIASES = {"anthropic": "claude", "google": "gemini"}
_MARKER = re.compile(
    r"\[\[sim:(?:(" + "|".join(re.escape(p) for p in (*SIM_PLATFORMS, *_ALIASES)) + r"):)?"
    r"fault=([a-z0-9]+?)(?:x(\d+))?\]\]"
)


@dataclass(slots=True)
class _Marker:
    kind: str
    times: int | None  # None: every call


def parse_markers(prompt: str) -> dict[str | None, _Marker]:
    """``[[sim:fault=KIND]]`` / ``[[sim:PLATFORM:fault=KINDxN]]`` markers by platform (None = all)."""
    out: dict[str | None, _Marker] = {}
    if "[[sim:" not in prompt:
        return out
    for plat, kind, times in _MARKER.findall(prompt):
        if kind not in FAULT_KINDS:
            log.warning("simulator: ignoring unknown fault kind %r in prompt marker", kind)
            continue
        key = _ALIASES.get(plat, plat) or None
        out[key] = _Marker(kind, int(times) if times else None)
    return out


@dataclass
class SimState:
    """Mutable simulator state behind one app: config, limiters, RNGs and counters."""

    config: SimulatorConfig
    limiters: dict[str, PlatformLimiter] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    answered: dict[str, dict[str, int]] = field(default_factory=dict)
    fault_hits: dict[tuple[str, str, str], int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    first_request_at: float | None = None  # epoch seconds of the first API request since the last reset
    in_flight: Counter[str] = field(default_factory=Counter)  # admitted, not answered yet (a gauge)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    fault_rng: random.Random = field(default_factory=random.Random)
    latency_rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.apply_config(self.config)
        self.reset()

    def apply_config(self, config: SimulatorConfig) -> None:
        now = time.monotonic()
        self.config = config
        self.limiters = {
            p: PlatformLimiter(config.platform(p).rpm, config.platform(p).tpm, now,
                               input_tpm=config.platform(p).input_tpm, output_tpm=config.platform(p).output_tpm)
            for p in SIM_PLATFORMS
        }
        self.fault_rng = random.Random(config.seed)
        self.latency_rng = random.Random(config.seed + 1)

    def reset(self) -> None:
        """Zero counters, marker xN progress and quota buckets (config stays; batch jobs stay)."""
        self.counts = {p: Counter() for p in SIM_PLATFORMS}
        self.answered = {p: {} for p in SIM_PLATFORMS}
        self.fault_hits = {}
        self.first_request_at = None
        self.apply_config(self.config)

    def stats(self) -> dict[str, Any]:
        plats: dict[str, dict[str, int]] = {}
        for p, c in self.counts.items():
            d = {"requests": 0, "ok": 0, "429": 0}
            d.update(c)
            plats[p] = d
        return {
            "platforms": plats,
            "answered": {p: dict(a) for p, a in self.answered.items()},
            "uptime_s": round(time.monotonic() - self.started, 3),
            "first_request_at": self.first_request_at,
            "in_flight": {p: self.in_flight[p] for p in SIM_PLATFORMS},
        }

    def pick_fault(self, platform: str, prompt: str, ps: PlatformSim) -> str | None:
        """The fault for this call: a prompt marker (platform-specific first), else fault_rate."""
        markers = parse_markers(prompt)
        m = markers.get(platform) or markers.get(None)
        if m is not None:
            if m.times is None:
                return m.kind
            key = (platform, m.kind, prompt_hash(prompt))
            done = self.fault_hits.get(key, 0)
            if done < m.times:
                self.fault_hits[key] = done + 1
                return m.kind
            return None
        if ps.fault_rate > 0 and self.fault_rng.random() < ps.fault_rate:
            return self.fault_rng.choice(ps.fault_kinds)
        return None

    def latency(self, ps: PlatformSim) -> float:
        if ps.latency_mean_s <= 0:
            return 0.0
        if ps.latency_sigma <= 0:
            return ps.latency_mean_s
        mu = math.log(ps.latency_mean_s) - ps.latency_sigma**2 / 2  # so the mean is latency_mean_s
        return self.latency_rng.lognormvariate(mu, ps.latency_sigma)


STATE_KEY = web.AppKey("simulator_state", SimState)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(status=status, body=data, content_type="application/json", headers=headers)


def _abort(request: web.Request) -> None:
    """Drop the TCP connection with an RST and no HTTP response (the "reset" fault)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _dropped(request: web.Request, state: SimState, delay: float) -> web.StreamResponse:
    """Wait ``delay`` (or until shutdown), then drop the connection without answering."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.closing.wait(), delay)
    _abort(request)
    # The connection is gone: aiohttp cancels this handler (handler_cancellation) or discards the reply.
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def _serve(request: web.Request, fmt: WireFormat, path_model: str | None = None) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    platform = fmt.platform
    counts = state.counts[platform]
    counts["requests"] += 1
    if state.first_request_at is None:
        state.first_request_at = time.time()
    rid = f"req_{new_id(12)}"
    base_headers = {fmt.request_id_header: rid}
    ps = state.config.platform(platform)

    key = fmt.key(request.headers, request.query)
    if not key:
        counts["401"] += 1
        return _json(401, fmt.error(401, fmt.missing_key_message(), rid), base_headers)
    if key in ps.invalid_keys or (ps.valid_keys is not None and key not in ps.valid_keys):
        counts["401"] += 1
        return _json(401, fmt.invalid_key(key, rid), base_headers)

    raw = await request.read()
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        call: Call = fmt.parse(body, path_model)
        call.extra.setdefault("origin", f"{request.scheme}://{request.host}")  # for links back to us
    except (ValueError, BadRequest) as e:
        counts["400"] += 1
        msg = e.message if isinstance(e, BadRequest) else f"We could not parse the JSON body of your request: {e}"
        param = e.param if isinstance(e, BadRequest) else None
        return _json(400, fmt.error(400, msg, rid, param=param), base_headers)

    answer_bytes = state.config.answer_bytes
    limiter = state.limiters[platform]
    est_in = estimate_tokens(call.prompt)
    est_out = answer_bytes // 4 if answer_bytes else 150
    if limiter.active:
        wait, what = limiter.acquire(est_in + est_out, time.monotonic(), input_tokens=est_in, output_tokens=est_out)
        if wait > 0:
            counts["429"] += 1
            payload, headers = fmt.rate_limited(wait, call.model, what, limiter.quota(), rid)
            return _json(429, payload, {**base_headers, **headers})

    fault = state.pick_fault(platform, call.prompt, ps)
    state.in_flight[platform] += 1
    try:
        if fault is not None:
            counts[f"fault:{fault}"] += 1
            if fault not in _HOSTILE:
                return await _inject(request, state, fmt, call, fault, rid, base_headers)
        delay = state.latency(ps)
        if delay > 0:
            await asyncio.sleep(delay)
        ans = make_answer(call.prompt, platform, state.config.seed, answer_bytes)
        payload = fmt.success(call, ans, rid)
        if limiter.active:
            limiter.settle((est_in, est_out), _usage(payload, (est_in, est_out)))
        if fault in _HOSTILE:
            payload = _HOSTILE[fault](payload)
    except asyncio.CancelledError:
        if fault != "reset":  # the client went away (timeout) before its answer was ready
            counts["cancelled"] += 1
        raise
    finally:
        state.in_flight[platform] -= 1
    counts["ok"] += 1
    answered = state.answered[platform]
    h = prompt_hash(call.prompt)
    answered[h] = answered.get(h, 0) + 1
    headers = {**base_headers, **fmt.extra_headers(), **fmt.quota_headers(limiter.quota())}
    return _json(200, payload, headers)


def _usage(payload: Any, default: tuple[int, int]) -> tuple[int, int]:
    """(input, output) tokens an answer body reports, whatever the wire format."""
    if not isinstance(payload, dict):
        return default
    u = payload.get("usage") or payload.get("usageMetadata")
    if not isinstance(u, dict):
        return default
    inp = u.get("input_tokens", u.get("prompt_tokens", u.get("promptTokenCount")))
    out = u.get("output_tokens", u.get("completion_tokens", u.get("candidatesTokenCount")))
    if isinstance(inp, int) and isinstance(out, int):
        return inp, out
    return default


_TEXT_KEYS = frozenset({"text", "content", "title", "output_text"})
_TOKEN_KEYS = frozenset({
    "input_tokens", "output_tokens", "total_tokens", "prompt_tokens", "completion_tokens",
    "promptTokenCount", "candidatesTokenCount", "totalTokenCount",
})


def _hostile(payload: Any, change: Any) -> Any:
    """A copy of ``payload`` with ``change(key, value)`` applied to every (key, value) of every object."""
    if isinstance(payload, dict):
        return {k: change(k, _hostile(v, change)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_hostile(v, change) for v in payload]
    return payload


def _with_nul(payload: Any) -> Any:
    """NUL inside answer text and titles, and a NUL-bearing field the client keeps in its raw JSON."""
    out = _hostile(payload, lambda k, v: v + "\x00 after a NUL" if k in _TEXT_KEYS and isinstance(v, str) else v)
    if isinstance(out, dict):
        out["sim_note"] = "raw \u0000 kept in metadata"
    return out


def _huge_usage(payload: Any) -> Any:
    return _hostile(payload, lambda k, v: 2**40 if k in _TOKEN_KEYS and isinstance(v, int) else v)


# Faults that still answer: the answer is paid for and counted, but its content is hostile.
_HOSTILE = {"nul": _with_nul, "hugeusage": _huge_usage}


async def _inject(
    request: web.Request,
    state: SimState,
    fmt: WireFormat,
    call: Call,
    fault: str,
    rid: str,
    headers: dict[str, str],
) -> web.StreamResponse:
    platform = fmt.platform
    if fault == "429":
        quota = state.limiters[platform].quota()
        payload, extra = fmt.rate_limited(state.config.fault_retry_after_s, call.model, "injected", quota, rid)
        return _json(429, payload, {**headers, **extra})
    if fault == "401":
        return _json(401, fmt.error(401, "Invalid authentication credentials.", rid), headers)
    if fault == "400":
        return _json(400, fmt.error(400, "Invalid request (injected by the simulator).", rid), headers)
    if fault == "hang":
        return await _dropped(request, state, HANG_S)
    if fault == "reset":
        return await _dropped(request, state, 0.0)
    delay = state.latency(state.config.platform(platform))
    if delay > 0:
        await asyncio.sleep(delay)
    if fault in ("500", "503"):
        status = int(fault)
        return _json(status, fmt.server_error(status, rid), headers)
    if fault == "failed":
        return _json(200, fmt.failed(call, rid), headers)
    # malformed: the first half of a real answer, so it is JSON-looking but does not parse.
    good = json.dumps(fmt.success(call, make_answer(call.prompt, platform, state.config.seed), rid)).encode()
    return web.Response(status=200, body=good[: len(good) // 2], content_type="application/json", headers=headers)


# --------------------------------------------------------------------------- routes


def _handler(fmt: WireFormat) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(request, fmt)

    return handle


# What each models-list endpoint lists: the project's default model and a few others.
_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "gpt-5-mini"],
    "openai-chat": ["gpt-4.1-mini", "gpt-4o-mini", "grok-4-fast"],
    "claude": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"],
    "gemini": ["gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-2.5-pro"],
    "perplexity": ["sonar", "sonar-pro", "sonar-reasoning-pro"],
}


def _models_handler(fmt: WireFormat) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The provider's models list: checks the key as a call does, costs nothing, states the limits
    (without taking from them) where the provider states them on its answers."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        platform = fmt.platform
        rid = f"req_{new_id(12)}"
        base_headers = {fmt.request_id_header: rid}
        ps = state.config.platform(platform)
        state.counts[platform]["models"] += 1
        key = fmt.key(request.headers, request.query)
        if not key:
            return _json(401, fmt.error(401, fmt.missing_key_message(), rid), base_headers)
        if key in ps.invalid_keys or (ps.valid_keys is not None and key not in ps.valid_keys):
            return _json(401, fmt.invalid_key(key, rid), base_headers)
        headers = {**base_headers, **fmt.quota_headers(state.limiters[platform].quota())}
        return _json(200, fmt.models_list(_MODELS.get(platform, [])), headers)

    return handle


async def _gemini(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["model_action"].partition(":")
    if action == "batchGenerateContent" and request.match_info["version"] in ("v1", "v1beta", "v1alpha"):
        return await batches.gemini.create(request, request.app[STATE_KEY], model)
    if request.match_info["version"] not in ("v1", "v1beta", "v1alpha") or action != "generateContent":
        msg = f"Method not found: {request.path} (the simulator serves v1/v1beta models/*:generateContent)"
        return _json(404, gemini.FORMAT.error(404, msg, ""))
    return await _serve(request, gemini.FORMAT, model)


async def _grounding_redirect(request: web.Request) -> web.StreamResponse:
    """A Gemini grounding link (GET or HEAD): a 302 to the source, or the fault its token carries."""
    state = request.app[STATE_KEY]
    counts = state.counts[gemini.FORMAT.platform]
    counts["redirects"] += 1
    found = gemini.redirect_target(request.match_info["token"])
    if found is None:
        counts["redirect:unknown"] += 1
        return web.Response(status=404, text="Not Found")
    kind, target = found
    if kind != "ok":
        counts[f"redirect:{kind}"] += 1
    if kind == "hang":
        return await _dropped(request, state, HANG_S)
    if kind in ("404", "500"):
        return web.Response(status=int(kind), text="Error")
    if kind == "slow":
        await asyncio.sleep(gemini.SLOW_REDIRECT_S)
    headers = {} if kind == "nolocation" else {"Location": target}
    return web.Response(status=302, headers=headers)


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return _json(200, {"status": "ok", "uptime_s": round(time.monotonic() - state.started, 3)})


async def _stats(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE_KEY].stats())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return _json(200, {"status": "ok"})


async def _get_config(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE_KEY].config.to_dict())


async def _put_config(request: web.Request) -> web.Response:
    try:
        config = SimulatorConfig.from_dict(json.loads(await request.read()))
    except (ValueError, SimulatorConfigError) as e:
        return _json(400, {"error": {"message": str(e)}})
    state = request.app[STATE_KEY]
    state.apply_config(config)
    return _json(200, config.to_dict())


def build_app(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp app (``client_max_size`` fits 32k-char prompts many times over)."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[STATE_KEY] = SimState(config or SimulatorConfig())
    app.router.add_post("/openai/v1/responses", _handler(openai_responses.FORMAT))
    app.router.add_post("/anthropic/v1/messages", _handler(anthropic.FORMAT))
    app.router.add_post("/gemini/{version}/models/{model_action}", _gemini)
    app.router.add_get(gemini.REDIRECT_PREFIX + "{token}", _grounding_redirect)  # and HEAD
    app.router.add_post("/perplexity/chat/completions", _handler(perplexity_sonar.FORMAT))
    app.router.add_post("/perplexity/v1/agent", _handler(perplexity_agent.FORMAT))
    app.router.add_post("/perplexity/v1/responses", _handler(perplexity_agent.FORMAT))
    app.router.add_post("/openai-chat/v1/chat/completions", _handler(openai_chat.FORMAT))
    batches.register(app, lambda request: request.app[STATE_KEY])
    app.router.add_get("/openai/v1/models", _models_handler(openai_responses.FORMAT))
    app.router.add_get("/anthropic/v1/models", _models_handler(anthropic.FORMAT))
    app.router.add_get("/gemini/{version}/models", _models_handler(gemini.FORMAT))
    app.router.add_get("/perplexity/router/v1/models", _models_handler(perplexity_sonar.FORMAT))
    app.router.add_get("/openai-chat/v1/models", _models_handler(openai_chat.FORMAT))
    app.router.add_get("/_sim/health", _health)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_get("/_sim/config", _get_config)
    app.router.add_put("/_sim/config", _put_config)
    return app


# --------------------------------------------------------------------------- running in-process


class RunningSimulator:
    """A started simulator: its URLs, in-process stats/config access, and ``stop()``."""

    def __init__(self, runner: web.AppRunner, app: web.Application, host: str, port: int) -> None:
        self._runner = runner
        self._app = app
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        self.base_urls: dict[str, str] = {p: self.url + path for p, path in BASE_PATHS.items()}

    @property
    def state(self) -> SimState:
        return self._app[STATE_KEY]

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    def set_config(self, config: SimulatorConfig) -> None:
        self.state.apply_config(config)

    async def stats(self) -> dict[str, Any]:
        return self.state.stats()

    async def reset(self) -> None:
        self.state.reset()

    async def stop(self) -> None:
        """Release hanging requests, then close the listener and every connection."""
        self.state.closing.set()
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningSimulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_simulator(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Start serving on ``host:port`` (0 = a free port) in the running event loop."""
    app = build_app(config)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound = runner.addresses[0]
    return RunningSimulator(runner, app, host, int(bound[1]))
