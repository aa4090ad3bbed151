"""Settings from TOML + environment, validated once at start by pydantic.

Each setting is declared once, in the dataclass that holds it: its type, its bounds and its default.
Pydantic checks the file against those declarations (unknown keys refused, numbers finite, no
coercion of a string or a boolean into a number) and its first error becomes a :class:`ConfigError`
naming the key (and the line for TOML syntax). Every value has a built-in default; secrets come only
from the environment (or systemd's ``$CREDENTIALS_DIRECTORY``) and are wrapped in :class:`Secret` so
no repr, log line or traceback shows them. The classes stay dataclasses: ``dataclasses.replace``
works on them and validates the new values too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import field, fields, replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

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

# Conservative tier-1-ish defaults: a run is bound by these, so users raise them to their tier.
_PLATFORM_DEFAULTS: dict[str, dict[str, Any]] = {
    "openai": {"model": "gpt-4.1-mini", "rpm": 500.0, "max_concurrency": 50},
    "gemini": {"model": "gemini-2.5-flash-lite", "rpm": 300.0, "max_concurrency": 50},
    "claude": {"model": "claude-haiku-4-5", "rpm": 50.0, "max_concurrency": 20},
    "perplexity": {"model": "sonar-pro", "rpm": 50.0, "max_concurrency": 20},
}

# ---------------------------------------------------------------- value types (the policies)
# Numbers and strings are strict: TOML's types are kept, "5" is not a number and true is not 1.
# Floats accept integers; nan and inf are refused (TOML allows them; a nan rate never compares).


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _auto_is_none(value: Any) -> Any:
    if value == "auto":
        return None
    if isinstance(value, str):
        raise ValueError(f'must be "auto" or a positive integer, got {value!r}')
    return value


PositiveInt = Annotated[int, Strict(), Field(gt=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]  # USD: a number or a string such as "0.40"
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), AfterValidator(_not_blank)]
_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)  # arbitrary: Secret, by isinstance


@dataclass(frozen=True, config=_CONFIG)
class PlatformSettings:
    name: Text
    enabled: Flag = True
    model: Name = ""
    rpm: PositiveFloat = 60.0
    tpm: PositiveInt | None = None
    max_concurrency: PositiveInt = 20
    timeout_s: PositiveFloat = 120.0
    max_attempts: PositiveInt = 4
    web_search: Flag = True
    input_price_per_mtok: Price | None = None  # None: take the packaged price table
    output_price_per_mtok: Price | None = None
    request_fee: Price | None = None
    max_tokens: PositiveInt = 2048  # claude requires it; others use it as an output cap where supported
    api: Literal["sonar", "agent"] = "sonar"  # perplexity only
    search_context_size: Literal["low", "medium", "high"] = "low"  # perplexity sonar only
    api_key: Secret | None = None  # from the environment only
    base_url: Text | None = None

    @property
    def configured(self) -> bool:
        return self.api_key is not None and bool(self.api_key)


@dataclass(frozen=True, config=_CONFIG)
class RunSettings:
    prompt_concurrency: Annotated[PositiveInt | None, BeforeValidator(_auto_is_none)] = None  # None = "auto"
    page_size: PositiveInt = 500
    grace_period_s: NonNegativeFloat = 30.0
    max_prompt_chars: PositiveInt = 32_000
    db_retry_s: NonNegativeFloat = 60.0
    lease_s: PositiveFloat | None = None  # None: per platform: that platform's timeout_s + 60 s
    breaker_threshold: PositiveInt = 5
    backoff_base_s: PositiveFloat = 1.0
    backoff_max_s: PositiveFloat = 60.0


@dataclass(frozen=True, config=_CONFIG)
class DatabaseSettings:
    url: Secret | None = None  # None: the embedded server; from the environment only
    pooler: Literal["auto", "transaction", "session"] = "auto"  # transaction disables prepared statements
    pool_max: PositiveInt = 20


def default_platform(name: str) -> PlatformSettings:
    return PlatformSettings(name=name, **_PLATFORM_DEFAULTS[name])


@dataclass(frozen=True, config=_CONFIG)
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


# ---------------------------------------------------------------- the file's shape


@dataclass(frozen=True, config=_CONFIG)
class _Platforms:
    openai: PlatformSettings = field(default_factory=partial(default_platform, "openai"))
    gemini: PlatformSettings = field(default_factory=partial(default_platform, "gemini"))
    claude: PlatformSettings = field(default_factory=partial(default_platform, "claude"))
    perplexity: PlatformSettings = field(default_factory=partial(default_platform, "perplexity"))


@dataclass(frozen=True, config=_CONFIG)
class _File:
    run: RunSettings = field(default_factory=RunSettings)
    platforms: _Platforms = field(default_factory=_Platforms)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)


_FILE = TypeAdapter(_File)
_SECTIONS: dict[str, type] = {"run": RunSettings, "platforms": PlatformSettings, "database": DatabaseSettings}
_NOT_IN_FILE = frozenset({"name", "api_key", "url"})  # a platform's name is its table's; secrets: environment


def _unknown(loc: tuple[str, ...]) -> str:
    """Why the last key of ``loc`` is refused, with the keys allowed in its place."""
    parent = loc[:-1]
    if not parent:
        return f"unknown section (known: {', '.join(f.name for f in fields(_File))})"
    if parent == ("platforms",):
        return f"unknown platform (known: {', '.join(PLATFORMS)})"
    known = sorted(f.name for f in fields(_SECTIONS[parent[0]]) if f.name not in _NOT_IN_FILE)
    return f"unknown key (known: {', '.join(known)})"


# What a wrong type was expected to be, by pydantic's error type.
_EXPECTED = {
    "int_type": "int",
    "float_type": "int or float",
    "decimal_type": "int or float or str",
    "string_type": "str",
    "bool_type": "bool",
}


def _reason(error: Mapping[str, Any], loc: tuple[str, ...]) -> str:
    """A pydantic error in the words of the messages users and tests know."""
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return _unknown(loc)
    if kind in ("dataclass_type", "dict_type"):
        return "must be a table"
    if kind in _EXPECTED:
        if isinstance(value, bool):
            return f"expected {'str' if kind == 'string_type' else 'int'}, got a boolean"
        return f"expected {_EXPECTED[kind]}, got {type(value).__name__} {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind in ("greater_than", "greater_than_equal"):
        op, bound = (">", ctx["gt"]) if kind == "greater_than" else (">=", ctx["ge"])
        return f"must be {op} {bound:g}, got {value!r}"
    if kind == "decimal_parsing":
        return f"not a number: {value!r}"
    if kind == "literal_error":
        return f"must be {ctx['expected'].replace(chr(39), '')}, got {value!r}"
    if kind == "value_error":
        return str(ctx["error"])
    return str(error["msg"])


def _config_error(e: ValidationError) -> ConfigError:
    error = e.errors(include_url=False)[0]
    loc = tuple(str(part) for part in error["loc"])
    return ConfigError(f"{'.'.join(loc)}: {_reason(error, loc)}")


def _prepare(raw: dict[str, Any]) -> dict[str, Any]:
    """The file's content with each platform table over that platform's defaults.

    Refuses what the file may not set: API keys and the database URL (secrets come from the
    environment) and a platform's ``name`` (its table's name).
    """
    database = raw.get("database")
    if isinstance(database, dict) and "url" in database:
        raise ConfigError("database.url: the database URL holds a password; set DATABASE_URL instead")
    tables = raw.get("platforms")
    if not isinstance(tables, dict):
        return raw
    merged = dict(tables)
    for name, section in tables.items():
        if name not in PLATFORMS or not isinstance(section, dict):
            continue  # refused by the validation, naming the key
        for key in ("api_key", "key"):
            if key in section:
                raise ConfigError(
                    f"platforms.{name}.{key}: API keys are not read from the config file; set {KEY_ENV[name][0]}"
                )
        if "name" in section:
            raise ConfigError(f"platforms.{name}.name: {_unknown(('platforms', name, 'name'))}")
        merged[name] = {**_PLATFORM_DEFAULTS[name], **section, "name": name}
    return {**raw, "platforms": merged}


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None


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
    raw = _read_toml(Path(path).expanduser()) if path else {}
    try:
        file = _FILE.validate_python(_prepare(raw))
    except ValidationError as e:
        raise _config_error(e) from None
    platforms: dict[str, PlatformSettings] = {}
    for name in PLATFORMS:
        ps: PlatformSettings = getattr(file.platforms, name)
        key = _lookup(env, KEY_ENV[name])
        base_url = env.get(BASE_URL_ENV[name]) or ps.base_url
        platforms[name] = replace(ps, api_key=Secret(key) if key else None, base_url=base_url or None)
    url = (env.get("DATABASE_URL") or _read_credential(env, "DATABASE_URL") or "").strip()
    database = replace(file.database, url=Secret(url) if url else None)
    home = Path(env.get("PROMPT_ANALYZER_HOME") or "~/.local/share/prompt-analyzer").expanduser()
    return Settings(
        run=file.run, platforms=platforms, database=database, home=home, source=str(path) if path else None
    )
