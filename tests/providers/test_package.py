"""The package's public names, the ``_types`` compatibility alias and ``make_provider``."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest

import prompt_analyzer.providers as providers
from prompt_analyzer.providers import AuthError, make_provider

from .helpers import make_settings

PUBLIC = (
    "Provider", "ProviderError", "ProviderResult", "QuotaExhausted", "RateLimited", "AuthError",
    "TransientError", "PermanentError", "MalformedResponse", "Citation", "make_provider", "scrub",
)


def test_public_names_importable_from_the_package() -> None:
    for name in PUBLIC:
        assert hasattr(providers, name), name
        assert name in providers.__all__, name


def test_types_alias_is_the_same_objects() -> None:
    """engine/breaker.py and engine/retry.py still import from ``providers._types``."""
    types = importlib.import_module("prompt_analyzer.providers._types")
    errors = importlib.import_module("prompt_analyzer.providers.errors")
    results = importlib.import_module("prompt_analyzer.providers.results")
    for name in ("AuthError", "ProviderError", "RateLimited", "QuotaExhausted", "TransientError", "PermanentError",
                 "MalformedResponse"):
        assert getattr(types, name) is getattr(errors, name) is getattr(providers, name)
    for name in ("Citation", "ProviderResult"):
        assert getattr(types, name) is getattr(results, name) is getattr(providers, name)


def test_make_provider_without_key_is_auth_error() -> None:
    with pytest.raises(AuthError):
        make_provider(replace(make_settings("openai"), api_key=None))
    with pytest.raises(ValueError):
        make_provider(make_settings("openai").__class__(name="bing"))
