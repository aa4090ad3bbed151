"""What every simulated wire format provides (:class:`WireFormat`), and the pieces they share.

The server (``..server``) owns the order of checks and the faults; a wire format owns only how one provider
API spells things: where the key is, what a valid request looks like, and the bodies and headers of answers,
errors and 429s.  Each format is a module of this package with one instance, ``FORMAT``, typed as
:class:`WireFormat` so mypy checks that it provides the whole interface.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..content import Answer


class BadRequest(Exception):
    """The request body is not what the provider accepts (becomes a 400 in its error shape)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(slots=True)
class Call:
    """One parsed request, whatever the API: what the model is asked and whether it may search."""

    model: str
    prompt: str
    search: bool
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific request details (tools, options)


@dataclass(slots=True)
class Quota:
    """Where a platform's quota stands, for 429 bodies and rate-limit headers."""

    rpm: float | None
    tpm: int | None
    requests_remaining: int
    requests_reset_s: float
    tokens_remaining: int | None = None
    tokens_reset_s: float = 0.0
    input_tpm: int | None = None  # Anthropic states input and output token limits separately
    input_tokens_remaining: int | None = None
    input_tokens_reset_s: float = 0.0
    output_tpm: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset_s: float = 0.0


Json = dict[str, Any]
BodyAndHeaders = tuple[Json, dict[str, str]]  # a 429's body and its headers


class WireFormat(Protocol):
    """One provider API as the simulator serves it.

    Every method is pure apart from generating ids: no I/O, no simulator state.  ``request_id`` arguments
    are the id the server sends in :attr:`request_id_header`; formats that echo it in bodies use it.
    """

    @property
    def platform(self) -> str:
        """The simulator platform (a ``SIM_PLATFORMS`` name) whose quota, faults and stats this API uses."""
        ...

    @property
    def request_id_header(self) -> str:
        """The response header carrying the request id, where the provider's SDK reads it."""
        ...

    def key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The API key of a request, read where the provider reads it; None when there is none."""
        ...

    def parse(self, body: Json, path_model: str | None) -> Call:
        """Validate a JSON request body and reduce it to a :class:`Call`.

        Raises :class:`BadRequest` for what the real API answers with a 400.  ``path_model`` is the model
        named in the URL path (Gemini), None for APIs that take it in the body.
        """
        ...

    def success(self, call: Call, ans: Answer, request_id: str) -> Json:
        """The 200 body of a completed answer: text, citations (only when ``call.search``) and usage."""
        ...

    def failed(self, call: Call, request_id: str) -> Json:
        """A 200 body that parses but holds no usable answer (the ``failed`` fault)."""
        ...

    def error(self, status: int, message: str, request_id: str, *, kind: str | None = None,
              param: str | None = None, code: str | None = None) -> Json:
        """An error body in the provider's shape for HTTP ``status``.

        ``kind`` overrides the error type derived from the status, ``param`` names the offending request
        field and ``code`` is the machine-readable code, where the provider's shape has those fields.
        """
        ...

    def missing_key_message(self) -> str:
        """The provider's message for a request without any API key (sent with a 401)."""
        ...

    def invalid_key(self, key: str, request_id: str) -> Json:
        """The 401 body for a rejected key; echoes the key as the real providers do."""
        ...

    def server_error(self, status: int, request_id: str) -> Json:
        """The body of a 500 or 503 as the provider words it."""
        ...

    def rate_limited(self, wait_s: float, model: str, what: str, quota: Quota, request_id: str) -> BodyAndHeaders:
        """Body and headers of a 429: the retry hint (``wait_s`` seconds) where this provider puts it.

        ``what`` is the exhausted limit: ``"requests"``, ``"tokens"`` or ``"injected"`` (a fault).
        """
        ...

    def quota_headers(self, quota: Quota) -> dict[str, str]:
        """Rate-limit headers sent with every answer (empty for providers that send none)."""
        ...

    def extra_headers(self) -> dict[str, str]:
        """Other headers the provider sends with a successful answer."""
        ...

    def models_list(self, models: list[str]) -> Json:
        """The body of the provider's models-list endpoint (what ``analyze doctor`` checks a key with)."""
        ...


# --------------------------------------------------------------------------- helpers shared by formats


def new_id(n: int) -> str:
    """``n`` random bytes as hex: request, message and response ids."""
    return os.urandom(n).hex()


def opaque(seed: str, length: int) -> str:
    """A stable, provider-looking opaque blob (encrypted_content, redirect ids)."""
    raw = hashlib.sha256(seed.encode()).digest()
    out = base64.urlsafe_b64encode(raw * (length // 43 + 1)).decode().rstrip("=")
    return out[:length]


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header."""
    auth = headers.get("Authorization", "")
    return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None


def text_of(content: Any) -> str:
    """Text of a chat/responses message ``content``: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return ""


def last_user_text(messages: Any, param: str) -> str:
    """The text of the last user message of a ``messages`` / ``input`` array."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest(f"'{param}' must be a non-empty array", param)
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role", "user") == "user":
            return text_of(m.get("content"))
    raise BadRequest(f"'{param}' has no user message", param)


def require_model(body: Json) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def ceil_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def ceil_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))


_DATED = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def dated(model: str, table: Mapping[str, str], suffix: str) -> str:
    """The dated model version a provider reports for an alias (``gpt-4.1-mini`` -> ``...-2025-04-14``)."""
    if model in table:
        return table[model]
    if _DATED.search(model):
        return model  # already dated
    return model + suffix


def plain_text(ans: Answer) -> str:
    """The answer's sentences without citation marks."""
    return " ".join(s.text for s in ans.sentences) + ans.filler


@dataclass(frozen=True, slots=True)
class Span:
    """Where a citation mark sits in the answer text (character offsets) and which source it names."""

    start: int
    end: int
    source: int


def marked_text(ans: Answer, mark: Callable[[int], str]) -> tuple[str, list[Span]]:
    """The answer's sentences, each cited one followed by ``mark(source index)``.

    A span covers the mark without its leading whitespace, so ``text[start:end]`` is the visible mark
    (``[2]``, ``([domain](url))``).
    """
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for i, s in enumerate(ans.sentences):
        piece = s.text if i == 0 else " " + s.text
        parts.append(piece)
        pos += len(piece)
        if s.source is not None:
            m = mark(s.source)
            lead = len(m) - len(m.lstrip())
            spans.append(Span(pos + lead, pos + len(m), s.source))
            parts.append(m)
            pos += len(m)
    return "".join(parts) + ans.filler, spans
