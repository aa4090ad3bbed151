"""How long a provider asks us to wait: pure parsers of the hints rate-limit answers carry.

``parse_retry_after`` is the one Retry-After parser of the project (the engine's backoff may call it
too).  The others read one provider's own spelling of a wait; each provider module combines them in
the order its API documents (see ``rate_limit_wait`` in openai_.py, claude.py, gemini.py).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["parse_go_duration", "parse_proto_duration", "parse_retry_after", "retry_from_message"]


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A non-blank header value by lowercase ``name``; any capitalisation in a plain dict; never raises."""
    if not headers:
        return None
    try:
        value = headers.get(name)
        if value is None:  # a plain dict: look past capitalisation (httpx Headers already do)
            value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name), None)
    except Exception:  # foreign header objects must not sink classification
        return None
    return value if isinstance(value, str) and value.strip() else None


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait: ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date); else ``None``.

    ``now`` (epoch seconds, default ``time.time()``) is what an HTTP date is measured from; a date in
    the past means no wait (0.0).  Negative, non-finite and unreadable values count as absent.
    """
    ms = header(headers, "retry-after-ms")
    if ms is not None:
        try:
            v = float(ms)
            if math.isfinite(v) and v >= 0:
                return v / 1000.0
        except ValueError:
            pass
    ra = header(headers, "retry-after")
    if ra is None:
        return None
    try:
        v = float(ra)
        return v if math.isfinite(v) and v >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_PROTO_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def parse_proto_duration(value: Any) -> float | None:
    """Google's JSON Duration (``"26s"``, ``"1.5s"``) in seconds."""
    if not isinstance(value, str):
        return None
    m = _PROTO_DURATION.match(value)
    return float(m.group(1)) if m else None


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_go_duration(value: str | None) -> float | None:
    """OpenAI's ``x-ratelimit-reset-*`` values: ``12ms``, ``6m0s``, ``1.5s``."""
    if not value or not isinstance(value, str):
        return None
    s = value.strip()
    parts = _GO_DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


_TRY_AGAIN = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|s|seconds?)\b", re.IGNORECASE)


def retry_from_message(message: str | None) -> float | None:
    """``Please try again in 6ms`` / ``Please retry in 26.5s``: last resort when headers say nothing."""
    if not message:
        return None
    m = _TRY_AGAIN.search(message)
    if not m:
        return None
    v = float(m.group(1))
    return v / 1000.0 if m.group(2).lower() == "ms" else v
