"""Shared helpers for the provider tests: settings factories, test keys and the vcr instance."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import vcr

from prompt_analyzer.config import PlatformSettings, Secret, default_platform
from prompt_analyzer.providers import make_provider
from prompt_analyzer.providers.base import BaseProvider

HERE = Path(__file__).resolve().parent
PAYLOADS = HERE / "payloads"
CASSETTES = HERE / "cassettes"

# Key-shaped test values (never real): scrub() must remove them wherever they surface.
KEYS = {
    "openai": "sk-test-openai-0123456789abcdefXYZ",
    "claude": "sk-ant-test-0123456789abcdefXYZ",
    "gemini": "AIzaTestKey0123456789abcdefghijklmnopq",
    "perplexity": "pplx-test0123456789abcdefXYZ",
}
ALL_SECRETS = tuple(KEYS.values())


def _json_body(r1: Any, r2: Any) -> None:
    """Match on the decoded JSON request body: the request we send is part of the contract."""
    b1, b2 = json.loads(r1.body or b"null"), json.loads(r2.body or b"null")
    assert b1 == b2, f"request body differs: {b1!r} != {b2!r}"


VCR = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",  # playback only: a request not in the cassette fails the test
    match_on=("method", "scheme", "host", "port", "path", "json_body"),
    filter_headers=["authorization", "x-api-key", "x-goog-api-key"],
    decode_compressed_response=True,
)


def make_settings(name: str, **changes: Any) -> PlatformSettings:
    base = default_platform(name)
    return replace(base, api_key=Secret(KEYS[name]), **changes)


def offline_provider(name: str, **changes: Any) -> BaseProvider:
    """A provider for reading bodies and mapping errors without a network (one per settings, cached).

    It never sends, so its HTTP client never opens a connection and needs no closing.
    """
    return _offline(name, tuple(sorted(changes.items())))


@cache
def _offline(name: str, changes: tuple[tuple[str, Any], ...]) -> BaseProvider:
    provider = make_provider(make_settings(name, **dict(changes)), secrets=ALL_SECRETS)
    assert isinstance(provider, BaseProvider)
    return provider


@cache
def _payload_text(name: str) -> str:
    return (PAYLOADS / name).read_text(encoding="utf-8")


def load_payload(name: str) -> Any:
    """A fresh decoded copy of a payload file (tests may mutate it)."""
    return json.loads(_payload_text(name))
VCR.register_matcher("json_body", _json_body)
