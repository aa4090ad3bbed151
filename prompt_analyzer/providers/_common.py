"""Shared pieces of the provider clients: error classification, safe JSON access, cost.

Kept in one place so every platform words, scrubs and classifies errors the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn

from ..config import PlatformSettings
from ..redact import scrub
from .errors import (
    AuthError,
    MalformedResponse,
    PermanentError,
    ProviderError,
    RateLimited,
    TransientError,
)
from .pricing import compute_cost, price_for
from .results import ProviderResult

MAX_MESSAGE = 300

# ------------------------------------------------------------------ safe access to decoded JSON


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """A non-negative token count, or None (bools, floats with fractions, negatives are not counts)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return None
    return d if d.is_finite() else None


def pick(d: Mapping[str, Any], *keys: str) -> Any:
    """First present key: Gemini's wire JSON is camelCase, SDK dumps are snake_case."""
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def decode_json(text: str | bytes, *, platform: str, status: int | None = 200) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedResponse(
            one_line(f"{platform}: HTTP {status}: response body is not JSON ({type(e).__name__})"),
            status=status,
        ) from None


# ------------------------------------------------------------------ messages


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Collapse whitespace and cut: error messages go to logs and table cells."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_text(body: Any, fallback: str = "") -> str:
    """The provider's own message from a decoded error body (OpenAI, Anthropic, Gemini, Perplexity)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            kind = err.get("type") or err.get("status") or err.get("code")
            if isinstance(msg, str) and msg:
                return f"{kind}: {msg}" if isinstance(kind, str) and kind and kind not in msg else msg
        elif isinstance(err, str) and err:
            return err
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def build_message(platform: str, status: int | None, detail: str, secrets: Iterable[str]) -> str:
    head = f"{platform}: HTTP {status}" if status is not None else f"{platform}"
    return scrub(one_line(f"{head}: {detail}" if detail else head), secrets)


# ------------------------------------------------------------------ classification


def classify_status(
    platform: str,
    status: int,
    detail: str,
    secrets: Iterable[str],
    *,
    retry_after: float | None = None,
    request_id: str | None = None,
    auth: bool = False,
    permanent: bool = False,
) -> ProviderError:
    """One HTTP status (plus hints) to one error class; the message is built and scrubbed here."""
    msg = build_message(platform, status, detail, secrets)
    if auth or status in (401, 403):
        return AuthError(msg, status=status, request_id=request_id)
    if permanent:
        return PermanentError(msg, status=status, request_id=request_id)
    if status == 429:
        return RateLimited(msg, retry_after=retry_after, status=status, request_id=request_id)
    if status >= 500 or status in (408, 409):  # 409: lock conflicts the SDKs themselves retry
        return TransientError(msg, status=status, request_id=request_id)
    if 400 <= status < 500:
        return PermanentError(msg, status=status, request_id=request_id)
    # 1xx/3xx (or 2xx other than what we expect): the server said something we cannot use.
    return MalformedResponse(msg, status=status, request_id=request_id)


def transport_error(platform: str, exc: BaseException, secrets: Iterable[str], *, timeout: bool) -> TransientError:
    """Timeouts, resets, refused connections: retryable, and never the exception's request details."""
    kind = "timeout" if timeout else "connection error"
    detail = str(exc) or type(exc).__name__
    return TransientError(build_message(platform, None, f"{kind}: {type(exc).__name__}: {detail}", secrets))


def unexpected(platform: str, exc: BaseException, secrets: Iterable[str]) -> ProviderError:
    """An exception nobody classified (an SDK bug, a new error type): still a ProviderError, retryable."""
    return ProviderError(build_message(platform, None, f"unexpected {type(exc).__name__}: {exc}", secrets))


def malformed(platform: str, what: str, secrets: Iterable[str], *, status: int | None = 200,
              request_id: str | None = None) -> NoReturn:
    raise MalformedResponse(build_message(platform, status, what, secrets), status=status, request_id=request_id)


def guarded_parse(
    platform: str,
    fn: Callable[[], ProviderResult],
    secrets: Sequence[str],
    *,
    request_id: str | None = None,
) -> ProviderResult:
    """Run a parser; anything but a classified error becomes MalformedResponse (the contract)."""
    try:
        return fn()
    except ProviderError:
        raise
    except Exception as e:  # a response we cannot read is malformed, whatever broke
        raise MalformedResponse(
            build_message(platform, 200, f"unparseable response ({type(e).__name__}: {e})", secrets),
            status=200,
            request_id=request_id,
        ) from None


# ------------------------------------------------------------------ result assembly


def elapsed_ms(start: float) -> int:
    return max(0, int(round((time.perf_counter() - start) * 1000)))


def finish_usage(
    result: ProviderResult,
    settings: PlatformSettings,
    *,
    have_usage: bool,
    searches: int = 0,
    search_context_size: str | None = None,
) -> ProviderResult:
    """Fill cost and the usage/price flags the same way on every platform."""
    result.metadata["searches"] = searches
    if not have_usage or result.input_tokens is None or result.output_tokens is None:
        result.input_tokens = result.input_tokens if have_usage else None
        result.output_tokens = result.output_tokens if have_usage else None
        result.total_tokens = result.total_tokens if have_usage else None
        result.cost = None
        result.metadata["usage_missing"] = True
        return result
    if result.total_tokens is None:
        result.total_tokens = result.input_tokens + result.output_tokens
    price = price_for(settings, result.model_version)
    if price is None:
        result.cost = None
        result.metadata["price_unknown"] = True
        return result
    result.metadata["price_model"] = price.model
    result.cost = compute_cost(
        price,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        searches=searches,
        search_context_size=search_context_size,
    )
    return result
