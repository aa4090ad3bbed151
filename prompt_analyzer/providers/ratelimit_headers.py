"""The limits a provider states about our key, read from its answers (pure parsers).

============  ===================================================================================
provider      what it states
============  ===================================================================================
OpenAI        every answer: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (per minute;
              reset as a Go duration, ``12ms``, ``6m0s``); OpenAI-compatible endpoints often copy it
Anthropic     every answer: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
              {limit,remaining,reset}`` (per minute; reset an RFC 3339 instant); input and output
              tokens are limited separately, ``tokens`` is whichever is most restrictive now
Gemini        no headers; a 429's body names the quota it hit with its value
              (``google.rpc.QuotaFailure`` ``violations[].quotaId`` / ``quotaValue``)
Perplexity    nothing (its documentation gives the tiers' rpm only)
============  ===================================================================================

What nobody states is learned the hard way (:mod:`prompt_analyzer.engine.limits`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from .json_fields import as_dict, as_list, as_str
from .retry_hints import header, parse_go_duration

__all__ = ["StatedLimits", "from_gemini_error", "from_headers"]


@dataclass(frozen=True, slots=True)
class StatedLimits:
    """Per-minute limits (None: not stated) and where the quota stands now."""

    rpm: float | None = None
    tpm: float | None = None
    input_tpm: float | None = None  # Anthropic: input tokens per minute
    output_tpm: float | None = None  # Anthropic: output tokens per minute
    rpd: float | None = None  # a per-day request quota (Gemini's 429 may name one)
    requests_remaining: float | None = None
    requests_reset_s: float | None = None
    tokens_remaining: float | None = None
    tokens_reset_s: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.input_tpm, self.output_tpm, self.rpd))

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


def _reference_time(headers: Mapping[str, str], now: float | None) -> float:
    """The response's ``date`` header when readable (a skewed local clock must not stretch a reset)."""
    if now is not None:
        return now
    date = header(headers, "date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            pass
    return time.time()


def _rfc3339_in(value: str | None, ref: float) -> float | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() - ref)


def _openai(headers: Mapping[str, str]) -> StatedLimits | None:
    rpm = _number(header(headers, "x-ratelimit-limit-requests"))
    tpm = _number(header(headers, "x-ratelimit-limit-tokens"))
    if rpm is None and tpm is None:
        return None
    return StatedLimits(
        rpm=rpm or None, tpm=tpm or None,
        requests_remaining=_number(header(headers, "x-ratelimit-remaining-requests")),
        requests_reset_s=parse_go_duration(header(headers, "x-ratelimit-reset-requests")),
        tokens_remaining=_number(header(headers, "x-ratelimit-remaining-tokens")),
        tokens_reset_s=parse_go_duration(header(headers, "x-ratelimit-reset-tokens")),
    )


def _anthropic(headers: Mapping[str, str], now: float | None) -> StatedLimits | None:
    def get(kind: str, what: str) -> str | None:
        return header(headers, f"anthropic-ratelimit-{kind}-{what}")

    rpm = _number(get("requests", "limit"))
    tpm = _number(get("tokens", "limit"))
    itpm = _number(get("input-tokens", "limit"))
    otpm = _number(get("output-tokens", "limit"))
    if rpm is None and tpm is None and itpm is None and otpm is None:
        return None
    ref = _reference_time(headers, now)
    return StatedLimits(
        rpm=rpm or None, tpm=tpm or None, input_tpm=itpm or None, output_tpm=otpm or None,
        requests_remaining=_number(get("requests", "remaining")),
        requests_reset_s=_rfc3339_in(get("requests", "reset"), ref),
        tokens_remaining=_number(get("tokens", "remaining")),
        tokens_reset_s=_rfc3339_in(get("tokens", "reset"), ref),
    )


def from_headers(headers: Mapping[str, str] | None, now: float | None = None) -> StatedLimits | None:
    """The limits stated in an answer's headers (OpenAI's or Anthropic's spelling); None when none.

    ``now`` (epoch seconds) is what Anthropic's reset instants are measured from (default: the
    response's ``date`` header, else the clock).  Never raises: odd values count as absent.
    """
    if not headers:
        return None
    try:
        return _anthropic(headers, now) or _openai(headers)
    except Exception:  # foreign header objects must never sink a call
        return None


def from_gemini_error(body: Any) -> StatedLimits | None:
    """The quota a Gemini 429 says it hit (``QuotaFailure.violations[]``), per minute or per day."""
    err = as_dict(as_dict(body).get("error", body))
    out: dict[str, float] = {}
    for d in as_list(err.get("details")):
        d = as_dict(d)
        if not str(d.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            continue
        for v in as_list(d.get("violations")):
            v = as_dict(v)
            qid = (as_str(v.get("quotaId")) or "").lower()
            value = _number(as_str(v.get("quotaValue")))
            if not qid or not value:
                continue
            if "perday" in qid and "request" in qid:
                out["rpd"] = value
            elif "perminute" in qid and "inputtoken" in qid:
                out["tpm"] = value
            elif "perminute" in qid and "request" in qid:
                out["rpm"] = value
    return StatedLimits(**out) if out else None
