"""Safe reads of decoded JSON: a wrong type is absent, never an exception."""

from __future__ import annotations

from decimal import Decimal

import pytest

from prompt_analyzer.providers import MalformedResponse
from prompt_analyzer.providers.json_fields import as_decimal, as_dict, as_int, as_list, as_object, as_str, pick


def test_as_object() -> None:
    assert as_object({"a": 1}) == {"a": 1}
    with pytest.raises(MalformedResponse, match="expected a JSON object, got list"):
        as_object([])


def test_containers_and_strings() -> None:
    assert as_dict([1]) == {} and as_dict({"a": 1}) == {"a": 1}
    assert as_list({"a": 1}) == [] and as_list([1]) == [1]
    assert as_str(5) is None and as_str("x") == "x"


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (0, 0), (3.0, 3), (3.5, None), (-1, None), (True, None),
                                                 ("3", None), (None, None), (10**12, 10**12)])
def test_as_int_is_a_token_count(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


def test_as_decimal() -> None:
    assert as_decimal("0.40") == Decimal("0.40") and as_decimal(2) == Decimal(2)
    assert as_decimal(float("inf")) is None and as_decimal(False) is None and as_decimal("x") is None


def test_pick_first_present_spelling() -> None:
    assert pick({"model_version": "b"}, "modelVersion", "model_version") == "b"
    assert pick({"modelVersion": None, "model_version": "b"}, "modelVersion", "model_version") == "b"
    assert pick({}, "a") is None
