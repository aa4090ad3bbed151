"""Safe reads of decoded JSON: a provider body may hold anything, and a wrong type must not raise."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .errors import MalformedResponse

__all__ = ["as_decimal", "as_dict", "as_int", "as_list", "as_object", "as_str", "pick"]


def as_object(body: Any) -> dict[str, Any]:
    """The body as a JSON object, or :class:`MalformedResponse` (a parser's first check)."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(body).__name__}")
    return body


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
