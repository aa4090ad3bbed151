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
import re
import tomllib
from collections.abc import Mapping
from dataclasses import field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from .platforms import BUILTIN_NAMES, BUILTINS, DECLARED_DEFAULTS, KINDS

PLATFORMS: tuple[str, ...] = BUILTIN_NAMES  # the built-in platforms; configuration may declare more


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


# Key / base URL variables of the built-in platforms (SDK-native names where the SDK has one).
KEY_ENV: dict[str, tuple[str, ...]] = {b.name: b.key_env for b in BUILTINS.values()}
BASE_URL_ENV: dict[str, str] = {b.name: b.base_url_env for b in BUILTINS.values()}
_PLATFORM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")

# ---------------------------------------------------------------- value types (the policies)
# Numbers and strings are strict: TOML's types are kept, "5" is not a number and true is not 1.
# Floats accept integers; nan and inf are refused (TOML allows them; a nan rate never compares).


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _known_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"must be one of {', '.join(KINDS)}, got {value!r}")
    return value


def _auto_is_none(value: Any) -> Any:
    if value == "auto":
        return None
    if isinstance(value, str):
        raise ValueError(f'must be "auto" or a positive integer, got {value!r}')
    return value


def _auto_number(value: Any) -> Any:
    if value == "auto":
        return None
    if isinstance(value, str):
        raise ValueError(f'must be "auto" or a positive number, got {value!r}')
    return value


PositiveInt = Annotated[int, Strict(), Field(gt=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
# "auto" (held as None): learned at run time (limits from the provider's headers, in-flight from latency)
AutoInt = Annotated[PositiveInt | None, BeforeValidator(_auto_is_none)]
AutoFloat = Annotated[PositiveFloat | None, BeforeValidator(_auto_number)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]  # USD: a number or a string such as "0.40"
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), AfterValidator(_not_blank)]
KindName = Annotated[str, Strict(), AfterValidator(_known_kind)]
_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)  # arbitrary: Secret, by isinstance


@dataclass(frozen=True, config=_CONFIG)
class PlatformSettings:
    name: Text
    kind: KindName | None = None  # the wire format and client (platforms.KINDS); None: the built-in's own
    enabled: Flag = True
    model: Name = ""
    # Limits: a number is an upper bound (a lower limit the provider states still wins); None ("auto"):
    # the provider's stated limit (engine/limits.py), from ``auto_start_rpm`` until it states one.
    rpm: AutoFloat = None
    tpm: AutoInt = None
    rpd: PositiveInt | None = None  # requests per day (UTC day), counted in the database across runs
    auto_start_rpm: PositiveFloat = 60.0  # rpm = "auto": the pace before the provider states a limit
    # In flight: None ("auto") follows rate x observed latency (engine/concurrency.py), capped below.
    max_concurrency: AutoInt = None
    max_concurrency_cap: PositiveInt = 256
    timeout_s: PositiveFloat = 120.0
    max_attempts: PositiveInt = 4
    web_search: Flag = True
    batch: Flag = True  # in mode "batch": use this platform's batch API (where it has one)
    batch_max_requests: PositiveInt | None = None  # requests per provider batch (None: the provider's limit)
    input_price_per_mtok: Price | None = None  # None: take the packaged price table
    output_price_per_mtok: Price | None = None
    request_fee: Price | None = None
    max_tokens: PositiveInt = 2048  # claude requires it; others use it as an output cap where supported
    api: Literal["sonar", "agent"] = "sonar"  # perplexity only
    search_context_size: Literal["low", "medium", "high"] = "low"  # perplexity sonar only
    search: Literal["none", "openai", "xai"] = "none"  # openai-chat: the endpoint's web search dialect
    api_key_env: Text | None = None  # the variable holding the key (declared platforms; overrides a built-in's)
    api_key: Secret | None = None  # from the environment only
    base_url: Text | None = None
    max_cost_usd: Price | None = None  # this platform's budget for one batch (None: no limit of its own)

    @property
    def configured(self) -> bool:
        return self.api_key is not None and bool(self.api_key)

    @property
    def kind_name(self) -> str:
        """The kind in force: the configured one, else the built-in platform's of the same name."""
        if self.kind:
            return self.kind
        if self.name in BUILTINS:
            return BUILTINS[self.name].kind
        raise ConfigError(f"platforms.{self.name}.kind: required for a platform of your own")


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
    max_cost_usd: Price | None = None  # budget for one batch, over all its runs (None: no limit)
    # batch mode (the providers' batch APIs, docs/batch-mode.md)
    mode: Literal["live", "batch"] = "live"
    batch_poll_max_s: PositiveFloat = 60.0  # polls of a provider batch back off from 1 s up to this
    batch_deadline_s: PositiveFloat = 86_400.0  # answers are due this long after the run started; waits end there
    batch_live_retry_within_s: NonNegativeFloat = 21_600.0  # retry live, not in a new batch, this close to it


@dataclass(frozen=True, config=_CONFIG)
class DatabaseSettings:
    url: Secret | None = None  # None: the embedded server; from the environment only
    pooler: Literal["auto", "transaction", "session"] = "auto"  # transaction disables prepared statements
    pool_max: PositiveInt = 20


@dataclass(frozen=True, config=_CONFIG)
class CoordinationSettings:
    """Several worker processes on one batch (``analyze run --workers N``, ``analyze worker``)."""

    redis_url: Text | None = None  # shared rate limits; REDIS_URL overrides; None: each worker takes rpm / N
    worker_lease_s: PositiveFloat = 30.0  # a worker silent this long is dead: its claims are taken over


def default_platform(name: str) -> PlatformSettings:
    b = BUILTINS[name]
    return PlatformSettings(name=name, kind=b.kind, **b.defaults)


@dataclass(frozen=True, config=_CONFIG)
class Settings:
    run: RunSettings = field(default_factory=RunSettings)
    platforms: Mapping[str, PlatformSettings] = field(default_factory=dict)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    coordination: CoordinationSettings = field(default_factory=CoordinationSettings)
    home: Path = field(default_factory=lambda: Path("~/.local/share/prompt-analyzer").expanduser())
    source: str | None = None  # config file path, for messages

    def platform(self, name: str) -> PlatformSettings:
        return self.platforms[name]

    @property
    def platform_names(self) -> tuple[str, ...]:
        """The built-in platforms, then those the configuration declares, in its order."""
        return tuple(self.platforms)

    def key_env(self, name: str) -> tuple[str, ...]:
        """The environment variables that may hold ``name``'s API key."""
        ps = self.platforms.get(name)
        if ps is not None and ps.api_key_env:
            return (ps.api_key_env,)
        return KEY_ENV.get(name, ())

    def secrets(self) -> list[str]:
        """Every configured secret value, for scrubbing messages we keep or print."""
        out = [p.api_key.get() for p in self.platforms.values() if p.api_key]
        if self.database.url is not None:
            from urllib.parse import urlsplit

            pw = urlsplit(self.database.url.get()).password
            if pw:
                out.append(pw)
        if self.coordination.redis_url:
            from urllib.parse import urlsplit

            pw = urlsplit(self.coordination.redis_url).password
            if pw:
                out.append(pw)
        return [s for s in out if len(s) >= 4]


# ---------------------------------------------------------------- the file's shape


@dataclass(frozen=True, config=_CONFIG)
class _File:
    run: RunSettings = field(default_factory=RunSettings)
    platforms: dict[str, PlatformSettings] = field(default_factory=dict)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    coordination: CoordinationSettings = field(default_factory=CoordinationSettings)


_FILE = TypeAdapter(_File)
_SECTIONS: dict[str, type] = {"run": RunSettings, "platforms": PlatformSettings, "database": DatabaseSettings,
                              "coordination": CoordinationSettings}
_NOT_IN_FILE = frozenset({"name", "api_key", "url"})  # a platform's name is its table's; secrets: environment


def _unknown(loc: tuple[str, ...]) -> str:
    """Why the last key of ``loc`` is refused, with the keys allowed in its place."""
    parent = loc[:-1]
    if not parent:
        return f"unknown section (known: {', '.join(f.name for f in fields(_File))})"
    if parent == ("platforms",):
        return (f"unknown platform (known: {', '.join(PLATFORMS)}); a platform of your own needs "
                f"kind = one of {', '.join(KINDS)}")
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
    tables = raw.get("platforms", {})
    if not isinstance(tables, dict):
        return raw
    merged: dict[str, Any] = {name: {**b.defaults, "name": name, "kind": b.kind} for name, b in BUILTINS.items()}
    for name, section in tables.items():
        if not isinstance(section, dict):
            merged[name] = section  # refused by the validation, naming the key
            continue
        builtin = BUILTINS.get(name)
        if builtin is None and "kind" not in section:
            raise ConfigError(f"platforms.{name}: {_unknown(('platforms', name))}")
        if builtin is None and not _PLATFORM_NAME.fullmatch(name):
            raise ConfigError(f"platforms.{name}: a platform's name is lowercase letters, digits, - and _ "
                              "(it is stored in every row and used in metric labels)")
        for key in ("api_key", "key"):
            if key in section:
                where = builtin.key_env[0] if builtin else "the variable named by api_key_env"
                raise ConfigError(f"platforms.{name}.{key}: API keys are not read from the config file; set {where}")
        if "name" in section:
            raise ConfigError(f"platforms.{name}.name: {_unknown(('platforms', name, 'name'))}")
        if builtin is None and "model" not in section:
            raise ConfigError(f"platforms.{name}.model: required: the model to ask")
        base = merged[name] if builtin else {**DECLARED_DEFAULTS, "name": name}
        merged[name] = {**base, **section}
    return {**raw, "platforms": merged}


def _check_declared(platforms: Mapping[str, PlatformSettings]) -> None:
    """What a platform of the user's own must say, beyond its table's types."""
    for name, ps in platforms.items():
        if name in BUILTINS:
            continue
        if not ps.api_key_env:
            raise ConfigError(f"platforms.{name}.api_key_env: required: the environment variable holding its key")
        if KINDS[ps.kind_name].needs_base_url and not ps.base_url:
            raise ConfigError(f"platforms.{name}.base_url: required for kind {ps.kind_name!r} (the endpoint to ask)")


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
    _check_declared(file.platforms)
    platforms: dict[str, PlatformSettings] = {}
    for name, ps in file.platforms.items():
        builtin = BUILTINS.get(name)
        key = _lookup(env, (ps.api_key_env,) if ps.api_key_env else builtin.key_env if builtin else ())
        base_url = (env.get(builtin.base_url_env) if builtin else None) or ps.base_url
        platforms[name] = replace(ps, api_key=Secret(key) if key else None, base_url=base_url or None)
    url = (env.get("DATABASE_URL") or _read_credential(env, "DATABASE_URL") or "").strip()
    database = replace(file.database, url=Secret(url) if url else None)
    home = Path(env.get("PROMPT_ANALYZER_HOME") or "~/.local/share/prompt-analyzer").expanduser()
    redis_url = (env.get("REDIS_URL") or "").strip() or file.coordination.redis_url
    coordination = replace(file.coordination, redis_url=redis_url or None)
    return Settings(
        run=file.run, platforms=platforms, database=database, coordination=coordination, home=home,
        source=str(path) if path else None,
    )
