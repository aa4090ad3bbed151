"""The Retry-After parser and the other wait hints providers send (pure functions, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from prompt_analyzer.providers.retry_hints import (
    parse_go_duration,
    parse_proto_duration,
    parse_retry_after,
    retry_from_message,
)

NOW = datetime(2025, 4, 21, 19, 13, 46, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # -ms wins
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "Mon, 21 Apr 2025 19:14:16 GMT"}, 30.0),  # HTTP date, 30 s after NOW
        ({"retry-after": "Mon, 21 Apr 2025 19:00:00 GMT"}, 0.0),  # in the past: no wait
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    got = parse_retry_after(headers, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_parse_retry_after_case_insensitive_headers() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "100"})) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("26s", 26.0), ("1.5s", 1.5), ("0.250s", 0.25), ("45.8s", 45.8), ("26", None), ("s", None), (26, None)],
)
def test_parse_proto_duration(value: object, expected: float | None) -> None:
    assert parse_proto_duration(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("12ms", 0.012), ("6m0s", 360.0), ("1.5s", 1.5),
                                                 ("1h2m", 3720.0), ("", None), ("6x", None), (None, None)])
def test_parse_go_duration(value: str | None, expected: float | None) -> None:
    assert parse_go_duration(value) == (pytest.approx(expected) if expected is not None else None)


def test_retry_from_message() -> None:
    assert retry_from_message("Please try again in 6ms. Contact us") == pytest.approx(0.006)
    assert retry_from_message("Please retry in 26.5s.") == 26.5
    assert retry_from_message("try again later") is None


def test_parse_retry_after_plain_dict_any_capitalisation() -> None:
    """The engine may hand over a plain dict: header names are case-insensitive there too."""
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"RETRY-AFTER-MS": "40", "Retry-After": "3"}) == pytest.approx(0.04)


def test_parse_retry_after_http_date_without_now_uses_the_clock() -> None:
    assert parse_retry_after({"retry-after": "Mon, 21 Apr 2025 19:14:16 GMT"}) == 0.0  # long past
    assert parse_retry_after({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}) > 1e9


def test_parse_retry_after_tolerates_foreign_header_objects() -> None:
    class Broken(dict[str, str]):
        def get(self, *_: object, **__: object) -> str:  # type: ignore[override]
            raise RuntimeError("boom")

    assert parse_retry_after(Broken(a="b")) is None

