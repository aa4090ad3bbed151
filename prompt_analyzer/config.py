"""Settings from TOML + environment, validated once at start.

Every value has a built-in default; secrets come only from the environment (or systemd's
``$CREDENTIALS_DIRECTORY``) and are wrapped in :class:`Secret` so no repr, log line or traceback
shows them.  A bad value raises :class:`ConfigError` naming the key (and the line for TOML syntax).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

PLATFORMS: tuple[str, ...] = ("openai", "gemini", "claude", "perplexity")


class ConfigError(ValueError):
    """A configuration value is missing, malformed or unknown (exit code 2)."""


class Secret:
    """A string that never shows itself in repr/str/format; call :meth:`get` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # pickling would write the secret out
        raise TypeError("Secret values cannot be pickled")


# Key / base URL variables per platform (SDK-native names where the SDK has one).
KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),  # the SDK prefers GOOGLE_API_KEY when both are set
    "claude": ("ANTHROPIC_API_KEY",),
    "perplexity": ("PERPLEXITY_API_KEY",),
}
BASE_URL_ENV: dict[str, str] = {
    "openai": "OPENAI_BASE_URL",
    "gemini": "GOOGLE_GEMINI_BASE_URL",
    "claude": "ANTHROPIC_BASE_URL",
    "perplexity": "PERPLEXITY_BASE_URL",
}

_DEFAULT_MODELS = {
    "openai": "gpt-4.1-mini",
    "gemini": "gemini-2.5-flash-lite",
    "claude": "claude-haiku-4-5",
    "perplexity": "sonar-pro",
}
# Conservative tier-1-ish defaults: a run is bound by these, so users raise them to their tier.
_DEFAULT_RPM = {"openai": 500, "gemini": 300, "claude": 50, "perplexity": 50}
_DEFAULT_CONCURRENCY = {"openai": 50, "gemini": 50, "claude": 20, "perplexity": 20}


@dataclass(frozen=True)
class PlatformSettings:
    name: str
    enabled: bool = True
    model: str = ""
    rpm: float = 60.0
    tpm: int | None = None
    max_concurrency: int = 20
    timeout_s: float = 120.0
    max_attempts: int = 4
    web_search: bool = True
    input_price_per_mtok: Decimal | None = None  # None: take the packaged price table
    output_price_per_mtok: Decimal | None = None
    request_fee: Decimal | None = None
    max_tokens: int = 2048  # claude requires it; others use it as an output cap where supported
    api: str = "sonar"  # perplexity only: "sonar" | "agent"
    search_context_size: str = "low"  # perplexity sonar only
    api_key: Secret | None = None
    base_url: str | None = None

    @property
    def configured(self) -> bool:
        return self.api_key is not None and bool(self.api_key)


@dataclass(frozen=True)
class RunSettings:
    prompt_concurrency: int | None = None  # None = "auto"
    page_size: int = 500
    grace_period_s: float = 30.0
    max_prompt_chars: int = 32_000
    db_retry_s: float = 60.0
    lease_s: float | None = None  # None: per platform: that platform's timeout_s + 60 s
    breaker_threshold: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: Secret | None = None  # None: the embedded server
    pooler: str = "auto"  # "auto" | "transaction" | "session": transaction disables prepared statements
    pool_max: int = 20


@dataclass(frozen=True)
class Settings:
    run: RunSettings = field(default_factory=RunSettings)
    platforms: Mapping[str, PlatformSettings] = field(default_factory=dict)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    home: Path = field(default_factory=lambda: Path("~/.local/share/prompt-analyzer").expanduser())
    source: str | None = None  # config file path, for messages

    def platform(self, name: str) -> PlatformSettings:
        return self.platforms[name]

    def secrets(self) -> list[str]:
        """Every configured secret value, for scrubbing messages we keep or print."""
        out = [p.api_key.get() for p in self.platforms.values() if p.api_key]
        if self.database.url is not None:
            from urllib.parse import urlsplit

            pw = urlsplit(self.database.url.get()).password
            if pw:
                out.append(pw)
        return [s for s in out if len(s) >= 4]



def default_platform(name: str) -> PlatformSettings:
    return PlatformSettings(
        name=name,
        model=_DEFAULT_MODELS[name],
        rpm=float(_DEFAULT_RPM[name]),
        max_concurrency=_DEFAULT_CONCURRENCY[name],
    )


# ---------------------------------------------------------------- validation helpers

_PLATFORM_TYPES: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "model": (str,),
    "rpm": (int, float),
    "tpm": (int,),
    "max_concurrency": (int,),
    "timeout_s": (int, float),
    "max_attempts": (int,),
    "web_search": (bool,),
    "input_price_per_mtok": (int, float, str),
    "output_price_per_mtok": (int, float, str),
    "request_fee": (int, float, str),
    "max_tokens": (int,),
    "api": (str,),
    "search_context_size": (str,),
    "base_url": (str,),
}
_RUN_TYPES: dict[str, tuple[type, ...]] = {
    "prompt_concurrency": (int, str),
    "page_size": (int,),
    "grace_period_s": (int, float),
    "max_prompt_chars": (int,),
    "db_retry_s": (int, float),
    "lease_s": (int, float),
    "breaker_threshold": (int,),
    "backoff_base_s": (int, float),
    "backoff_max_s": (int, float),
}
_DB_TYPES: dict[str, tuple[type, ...]] = {"pooler": (str,), "pool_max": (int,)}


def _check_type(key: str, value: Any, types: tuple[type, ...]) -> None:
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"{key}: expected {types[0].__name__}, got a boolean")
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{key}: expected {names}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # TOML allows nan and inf
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _decimal(key: str, value: Any) -> Decimal:
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{key}: not a number: {value!r}") from None
    if not d.is_finite():
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if d < 0:
        raise ConfigError(f"{key}: must be a non-negative number, got {value!r}")
    return d


def _parse_platform(name: str, raw: Mapping[str, Any]) -> PlatformSettings:
    base = default_platform(name)
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"platforms.{name}.{key}"
        if key in ("api_key", "key"):
            raise ConfigError(f"{full}: API keys are not read from the config file; set {KEY_ENV[name][0]}")
        if key not in _PLATFORM_TYPES:
            raise ConfigError(f"{full}: unknown key (known: {', '.join(sorted(_PLATFORM_TYPES))})")
        _check_type(full, value, _PLATFORM_TYPES[key])
        if key in ("input_price_per_mtok", "output_price_per_mtok", "request_fee"):
            value = _decimal(full, value)
        elif key in ("rpm", "timeout_s"):
            _positive(full, value)
            value = float(value)
        elif key in ("tpm", "max_concurrency", "max_attempts", "max_tokens"):
            _positive(full, value)
        elif key == "api" and value not in ("sonar", "agent"):
            raise ConfigError(f"{full}: must be \"sonar\" or \"agent\", got {value!r}")
        elif key == "search_context_size" and value not in ("low", "medium", "high"):
            raise ConfigError(f"{full}: must be low, medium or high, got {value!r}")
        elif key == "model" and not value.strip():
            raise ConfigError(f"{full}: must not be empty")
        changes[key] = value
    return replace(base, **changes)


def _parse_run(raw: Mapping[str, Any]) -> RunSettings:
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"run.{key}"
        if key not in _RUN_TYPES:
            raise ConfigError(f"{full}: unknown key (known: {', '.join(sorted(_RUN_TYPES))})")
        _check_type(full, value, _RUN_TYPES[key])
        if key == "prompt_concurrency":
            if isinstance(value, str):
                if value != "auto":
                    raise ConfigError(f'{full}: must be "auto" or a positive integer, got {value!r}')
                value = None
            else:
                _positive(full, value)
        elif key in ("grace_period_s", "db_retry_s"):
            _positive(full, value, allow_zero=True)
            value = float(value)
        else:
            _positive(full, value)
        changes[key] = value
    return replace(RunSettings(), **changes)


def _parse_database(raw: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"database.{key}"
        if key == "url":
            raise ConfigError(f"{full}: the database URL holds a password; set DATABASE_URL instead")
        if key not in _DB_TYPES:
            raise ConfigError(f"{full}: unknown key (known: {', '.join(sorted(_DB_TYPES))})")
        _check_type(full, value, _DB_TYPES[key])
        if key == "pooler" and value not in ("auto", "transaction", "session"):
            raise ConfigError(f"{full}: must be auto, transaction or session, got {value!r}")
        if key == "pool_max":
            _positive(full, value)
        changes[key] = value
    return changes


def _read_credential(env: Mapping[str, str], name: str) -> str | None:
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        return None
    path = Path(cred_dir) / name
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _lookup(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
        v = env.get(n) or _read_credential(env, n)
        if v and v.strip():
            return v.strip()
    return None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (``path`` or ``$PROMPT_ANALYZER_CONFIG``) and the environment, validate once."""
    env = os.environ if env is None else env
    path = path or env.get("PROMPT_ANALYZER_CONFIG") or None
    raw: dict[str, Any] = {}
    if path:
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {p}: {e}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML: {e}") from None
    for section in raw:
        if section not in ("run", "platforms", "database"):
            raise ConfigError(f"{section}: unknown section (known: run, platforms, database)")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{section}: must be a table")
    run = _parse_run(raw.get("run", {}))
    plat_raw = raw.get("platforms", {})
    for name, section in plat_raw.items():
        if name not in PLATFORMS:
            raise ConfigError(f"platforms.{name}: unknown platform (known: {', '.join(PLATFORMS)})")
        if not isinstance(section, dict):
            raise ConfigError(f"platforms.{name}: must be a table")
    platforms: dict[str, PlatformSettings] = {}
    for name in PLATFORMS:
        ps = _parse_platform(name, plat_raw.get(name, {}))
        key = _lookup(env, KEY_ENV[name])
        base_url = env.get(BASE_URL_ENV[name]) or ps.base_url
        platforms[name] = replace(ps, api_key=Secret(key) if key else None, base_url=base_url or None)
    db_changes = _parse_database(raw.get("database", {}))
    url = (env.get("DATABASE_URL") or _read_credential(env, "DATABASE_URL") or "").strip()
    database = replace(DatabaseSettings(), url=Secret(url) if url else None, **db_changes)
    home = Path(env.get("PROMPT_ANALYZER_HOME") or "~/.local/share/prompt-analyzer").expanduser()
    return Settings(
        run=run, platforms=platforms, database=database, home=home, source=str(path) if path else None
    )
