"""The package's public names, the ``_types`` compatibility alias and ``make_provider``."""

from __future__ import annotations

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


def test_make_provider_without_key_is_auth_error() -> None:
    with pytest.raises(AuthError):
        make_provider(replace(make_settings("openai"), api_key=None))
    with pytest.raises(ValueError):
        make_provider(make_settings("openai").__class__(name="bing"))
