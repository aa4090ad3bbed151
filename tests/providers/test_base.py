"""BaseProvider.ask(): timing, classification, decoding, parsing and cost, with a stand-in platform.

The stand-in only supplies the three hooks (send, map_error, parse); everything checked here is the
base class's, shared by every real provider (which the cassette and simulator tests drive for real).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import pytest

from prompt_analyzer.config import PlatformSettings
from prompt_analyzer.providers import (
    AuthError,
    Citation,
    MalformedResponse,
    PermanentError,
    ProviderError,
    RateLimited,
    TransientError,
)
from prompt_analyzer.providers.base import BaseProvider, Reply
from prompt_analyzer.providers.results import Answer, Usage

from .helpers import KEYS, make_settings

KEY = KEYS["openai"]


class SDKError(Exception):
    """An SDK's own exception type, with the status it carries."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"status {status}")
        self.status, self.body, self.headers = status, body, headers or {}


class StandIn(BaseProvider):
    def __init__(self, settings: PlatformSettings, *, send: Callable[[], Any], parse: Callable[[Any], Answer]) -> None:
        super().__init__(settings, secrets=("another-secret-value",))
        self._send, self._parse = send, parse

    async def send(self, prompt: str) -> Reply:
        await asyncio.sleep(0.02)
        out = self._send()
        return out if isinstance(out, Reply) else Reply(out, "req-1")

    def map_error(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, SDKError):
            return self.http_error(exc.status, f"said {exc.body}", headers=exc.headers, body=exc.body)
        return None

    def parse(self, body: Any, request_id: str | None) -> Answer:
        return self._parse(body)


def answer(**usage: Any) -> Answer:
    return Answer(text="hi", model_version="gpt-4.1-mini-2025-04-14", usage=Usage(**usage),
                  citations=[Citation("https://a.com/", "a.com", None, 1, True)], request_id="req-1",
                  metadata={"own": 1})


def stand_in(send: Callable[[], Any] = lambda: "{}", parse: Callable[[Any], Answer] = lambda b: answer(),
             **changes: Any) -> StandIn:
    changes.setdefault("model", "gpt-4.1-mini")
    return StandIn(make_settings("openai", **changes), send=send, parse=parse)


def raising(exc: BaseException) -> Callable[[], Any]:
    def f() -> Any:
        raise exc

    return f


async def ask_error(p: BaseProvider) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await p.ask("q")
    err = info.value
    assert err.__cause__ is None and err.__suppress_context__
    assert "\n" not in err.message and KEY not in err.message and "another-secret-value" not in err.message
    return err


async def test_success_is_timed_priced_and_flagged() -> None:
    p = stand_in(parse=lambda b: answer(input_tokens=1000, output_tokens=500, reported=True, searches=2))
    r = await p.ask("q")
    assert r.text == "hi" and r.request_id == "req-1" and r.raw == {}
    assert r.latency_ms >= 15
    assert (r.input_tokens, r.output_tokens, r.total_tokens) == (1000, 500, 1500)  # total added when absent
    assert r.cost == Decimal("0.0004") + Decimal("0.0008") + 2 * Decimal("0.010")
    assert r.metadata == {"own": 1, "searches": 2, "price_model": "gpt-4.1-mini", "web_search": True}
    assert r.citations[0].domain == "a.com"


async def test_usage_missing_and_price_unknown() -> None:
    r = await stand_in(parse=lambda b: answer(input_tokens=5, output_tokens=6, total_tokens=11)).ask("q")
    assert (r.input_tokens, r.output_tokens, r.total_tokens, r.cost) == (None, None, None, None)
    assert r.metadata["usage_missing"] is True
    r = await stand_in(parse=lambda b: answer(input_tokens=5, reported=True)).ask("q")
    assert (r.input_tokens, r.output_tokens, r.cost) == (5, None, None) and r.metadata["usage_missing"] is True
    p = stand_in(parse=lambda b: replace(answer(input_tokens=1, output_tokens=1, reported=True),
                                         model_version="o9-ultra"), model="o9-ultra", web_search=False)
    r = await p.ask("q")
    assert r.cost is None and r.metadata["price_unknown"] is True and r.metadata["web_search"] is False
    assert r.total_tokens == 2


async def test_the_price_is_looked_up_once_per_model() -> None:
    p = stand_in()
    assert p.price("gpt-4.1-mini-2025-04-14") is p.price("gpt-4.1-mini-2025-04-14")
    assert list(p._prices) == [("gpt-4.1-mini-2025-04-14", False)]
    assert p.price("gpt-4.1-mini-2025-04-14", batch=True) is p.price("gpt-4.1-mini-2025-04-14", batch=True)
    assert list(p._prices) == [("gpt-4.1-mini-2025-04-14", False), ("gpt-4.1-mini-2025-04-14", True)]


async def test_a_body_that_is_not_json_is_malformed() -> None:
    err = await ask_error(stand_in(send=lambda: "<html>"))
    assert type(err) is MalformedResponse and err.status == 200
    assert err.message == "openai: HTTP 200: response body is not JSON (JSONDecodeError)"
    err = await ask_error(stand_in(send=lambda: b'"\xff"'))
    assert err.message == "openai: HTTP 200: response body is not JSON (UnicodeDecodeError)"


async def test_parser_errors_are_worded_and_scrubbed_here() -> None:
    def parse(body: Any) -> Answer:
        raise PermanentError(f"refusal: no ({KEY})", request_id="req-9")

    err = await ask_error(stand_in(parse=parse))
    assert type(err) is PermanentError and err.status == 200 and err.request_id == "req-9"
    assert err.message == "openai: HTTP 200: refusal: no (***)" and str(err) == err.message


async def test_anything_a_parser_breaks_on_is_malformed() -> None:
    def parse(body: Any) -> Answer:
        return body["missing"]  # type: ignore[no-any-return]

    err = await ask_error(stand_in(parse=parse))
    assert type(err) is MalformedResponse and err.status == 200 and err.request_id == "req-1"
    assert err.message == "openai: HTTP 200: unparseable response (KeyError: 'missing')"


@pytest.mark.parametrize(
    ("exc", "cls", "words"),
    [
        (httpx.ReadTimeout("slow"), TransientError, "openai: timeout: ReadTimeout: slow"),
        (httpx2.ConnectError("refused"), TransientError, "openai: connection error: ConnectError: refused"),
        (httpx2.ReadTimeout("t"), TransientError, "openai: timeout: ReadTimeout: t"),
        (RuntimeError(f"bug with {KEY}"), ProviderError, "openai: unexpected RuntimeError: bug with ***"),
    ],
)
async def test_transport_and_unforeseen_exceptions(exc: Exception, cls: type[ProviderError], words: str) -> None:
    err = await ask_error(stand_in(send=raising(exc)))
    assert type(err) is cls and err.status is None and err.message == words


async def test_sdk_statuses_go_through_one_classification() -> None:
    err = await ask_error(stand_in(send=raising(SDKError(401, f"bad key {KEY}"))))
    assert type(err) is AuthError and err.message == "openai: HTTP 401: said bad key ***"
    err = await ask_error(stand_in(send=raising(SDKError(429, "slow down", {"retry-after": "7"}))))
    assert isinstance(err, RateLimited) and err.retry_after == 7.0
    err = await ask_error(stand_in(send=raising(SDKError(429, "Please try again in 20ms"))))
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(0.02)
    err = await ask_error(stand_in(send=raising(SDKError(503))))
    assert type(err) is TransientError and err.status == 503


async def test_an_error_raised_by_send_passes_untouched() -> None:
    mine = PermanentError("openai: HTTP 400: already worded", status=400)
    with pytest.raises(PermanentError) as info:
        await stand_in(send=raising(mine)).ask("q")
    assert info.value is mine and mine.message == "openai: HTTP 400: already worded"


def test_messages_are_one_short_scrubbed_line() -> None:
    p = stand_in()
    msg = p.message(500, f"a\nb\t\tc {KEY} " + "x" * 1000)
    assert msg.startswith("openai: HTTP 500: a b c *** x") and len(msg) <= 300 and msg.endswith("…")
    assert p.message(None, "") == "openai"
    assert p.malformed("no text", request_id="r").message == "openai: HTTP 200: no text"


def test_a_platform_without_key_is_refused() -> None:
    with pytest.raises(AuthError, match="openai: no API key configured"):
        StandIn(replace(make_settings("openai"), api_key=None), send=lambda: "{}", parse=lambda b: answer())
