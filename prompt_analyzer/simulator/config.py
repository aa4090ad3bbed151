"""Simulator settings: per-platform quotas, latency and faults, as plain JSON-able dataclasses.

Kept separate from the project's :mod:`prompt_analyzer.config` on purpose: the simulator plays the
providers' side, so its knobs (quotas, fault rates) describe the remote end, not our client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..platforms import KINDS

# The project's four platforms, then "openai-chat": any OpenAI-compatible Chat Completions endpoint.
SIM_PLATFORMS: tuple[str, ...] = tuple(KINDS)  # the simulator plays each kind of platform the registry knows

# Fault kinds a request can be given (by marker or by fault_rate).
FAULT_KINDS: tuple[str, ...] = (
    "500", "503", "429", "hang", "reset", "malformed", "failed", "401", "400",
    # hostile answers: a 200 that parses but carries what a database refuses
    "nul",  # NUL characters in the answer text, citation titles and the raw JSON
    "hugeusage",  # token counts beyond a 32-bit integer
)

PROFILES: tuple[str, ...] = ("realistic", "fast")

# Mean latencies (s) seen on small prompts with web search; sigma keeps a realistic long tail.
_REALISTIC_LATENCY = {"openai": 1.5, "gemini": 1.5, "claude": 2.5, "perplexity": 3.0, "openai-chat": 1.2}
# Tier-1-ish quotas, the same order as the project's defaults, so a demo run paces like production.
_REALISTIC_RPM = {"openai": 500.0, "gemini": 300.0, "claude": 50.0, "perplexity": 50.0, "openai-chat": 500.0}


class SimulatorConfigError(ValueError):
    """A simulator configuration value is unknown or out of range."""


@dataclass(frozen=True)
class PlatformSim:
    """How one simulated provider behaves. ``rpm=None`` means unlimited; latency 0 means none."""

    rpm: float | None = None
    tpm: int | None = None
    input_tpm: int | None = None  # separate input / output token limits, as Anthropic has them
    output_tpm: int | None = None
    latency_mean_s: float = 0.0
    latency_sigma: float = 0.5
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "503", "429")
    invalid_keys: tuple[str, ...] = ()
    valid_keys: tuple[str, ...] | None = None  # None: any non-empty key is accepted

    def validate(self, name: str) -> None:
        if self.rpm is not None and self.rpm <= 0:
            raise SimulatorConfigError(f"platforms.{name}.rpm: must be > 0 or null, got {self.rpm!r}")
        for key in ("tpm", "input_tpm", "output_tpm"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise SimulatorConfigError(f"platforms.{name}.{key}: must be > 0 or null, got {value!r}")
        if self.latency_mean_s < 0 or self.latency_sigma < 0:
            raise SimulatorConfigError(f"platforms.{name}: latency values must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise SimulatorConfigError(f"platforms.{name}.fault_rate: must be in [0, 1], got {self.fault_rate!r}")
        for kind in self.fault_kinds:
            if kind not in FAULT_KINDS:
                raise SimulatorConfigError(
                    f"platforms.{name}.fault_kinds: unknown kind {kind!r} (known: {', '.join(FAULT_KINDS)})"
                )
        if self.fault_rate > 0 and not self.fault_kinds:
            raise SimulatorConfigError(f"platforms.{name}.fault_kinds: must not be empty when fault_rate > 0")


def profile_platforms(profile: str) -> dict[str, PlatformSim]:
    """The per-platform defaults of a named profile ("realistic" or "fast")."""
    if profile == "realistic":
        return {
            p: PlatformSim(rpm=_REALISTIC_RPM[p], latency_mean_s=_REALISTIC_LATENCY[p], latency_sigma=0.5)
            for p in SIM_PLATFORMS
        }
    if profile == "fast":
        return {p: PlatformSim() for p in SIM_PLATFORMS}
    raise SimulatorConfigError(f"profile: must be one of {', '.join(PROFILES)}, got {profile!r}")


_PLATFORM_FIELDS = {f.name for f in fields(PlatformSim)}
_TOP_FIELDS = ("profile", "seed", "answer_bytes", "fault_retry_after_s", "platforms", "batch_processing_s",
               "batch_expire_after_s", "batch_create_delay_s")


def _platform_from_dict(name: str, base: PlatformSim, raw: Mapping[str, Any]) -> PlatformSim:
    if not isinstance(raw, Mapping):
        raise SimulatorConfigError(f"platforms.{name}: must be an object")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _PLATFORM_FIELDS:
            raise SimulatorConfigError(
                f"platforms.{name}.{key}: unknown key (known: {', '.join(sorted(_PLATFORM_FIELDS))})"
            )
        try:
            if key == "rpm":
                value = None if value is None else float(value)
            elif key in ("tpm", "input_tpm", "output_tpm"):
                value = None if value is None else int(value)
            elif key in ("latency_mean_s", "latency_sigma", "fault_rate"):
                value = float(value)
            elif key in ("fault_kinds", "invalid_keys"):
                value = tuple(str(v) for v in value)
            elif key == "valid_keys":
                value = None if value is None else tuple(str(v) for v in value)
        except (TypeError, ValueError):
            raise SimulatorConfigError(f"platforms.{name}.{key}: bad value {value!r}") from None
        changes[key] = value
    out = replace(base, **changes)
    out.validate(name)
    return out


@dataclass(frozen=True)
class SimulatorConfig:
    """Whole-simulator settings; the default is the "realistic" profile."""

    platforms: dict[str, PlatformSim] = field(default_factory=lambda: profile_platforms("realistic"))
    seed: int = 0
    answer_bytes: int | None = None  # None: natural length (a few sentences); else pad to about this size
    fault_retry_after_s: float = 1.0  # retry hint sent with an injected (not quota) 429
    profile: str = "realistic"
    batch_processing_s: float = 0.0  # how long a provider batch job takes (batch APIs)
    batch_expire_after_s: float | None = None  # a job not done by then expires (None: never)
    batch_create_delay_s: float = 0.0  # a batch create answers this late (the batch exists meanwhile)

    def platform(self, name: str) -> PlatformSim:
        return self.platforms.get(name) or PlatformSim()

    @classmethod
    def for_profile(cls, profile: str, **changes: Any) -> SimulatorConfig:
        return replace(cls(platforms=profile_platforms(profile), profile=profile), **changes)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SimulatorConfig:
        """Build from JSON: ``profile`` gives the defaults, ``platforms.<name>`` overrides fields."""
        if not isinstance(raw, Mapping):
            raise SimulatorConfigError("config: must be a JSON object")
        for key in raw:
            if key not in _TOP_FIELDS:
                raise SimulatorConfigError(f"{key}: unknown key (known: {', '.join(_TOP_FIELDS)})")
        profile = str(raw.get("profile", "realistic"))
        platforms = profile_platforms(profile)
        plat_raw = raw.get("platforms") or {}
        if not isinstance(plat_raw, Mapping):
            raise SimulatorConfigError("platforms: must be an object")
        for name, section in plat_raw.items():
            if name not in SIM_PLATFORMS:
                raise SimulatorConfigError(
                    f"platforms.{name}: unknown platform (known: {', '.join(SIM_PLATFORMS)})"
                )
            platforms[name] = _platform_from_dict(name, platforms[name], section)
        try:
            seed = int(raw.get("seed", 0))
            ab = raw.get("answer_bytes")
            answer_bytes = None if ab is None else int(ab)
            retry = float(raw.get("fault_retry_after_s", 1.0))
        except (TypeError, ValueError) as e:
            raise SimulatorConfigError(f"config: bad value: {e}") from None
        if answer_bytes is not None and answer_bytes < 0:
            raise SimulatorConfigError("answer_bytes: must be >= 0 or null")
        if retry < 0:
            raise SimulatorConfigError("fault_retry_after_s: must be >= 0")
        try:
            processing = float(raw.get("batch_processing_s", 0.0))
            exp = raw.get("batch_expire_after_s")
            expire = None if exp is None else float(exp)
            create_delay = float(raw.get("batch_create_delay_s", 0.0))
        except (TypeError, ValueError) as e:
            raise SimulatorConfigError(f"config: bad value: {e}") from None
        if processing < 0 or create_delay < 0 or (expire is not None and expire < 0):
            raise SimulatorConfigError("batch_processing_s, batch_expire_after_s, batch_create_delay_s: must be >= 0")
        return cls(
            platforms=platforms, seed=seed, answer_bytes=answer_bytes, fault_retry_after_s=retry, profile=profile,
            batch_processing_s=processing, batch_expire_after_s=expire, batch_create_delay_s=create_delay,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict(to_dict())`` gives an equal config."""
        plats: dict[str, Any] = {}
        for name, ps in self.platforms.items():
            d = asdict(ps)
            d["fault_kinds"] = list(ps.fault_kinds)
            d["invalid_keys"] = list(ps.invalid_keys)
            d["valid_keys"] = None if ps.valid_keys is None else list(ps.valid_keys)
            plats[name] = d
        return {
            "profile": self.profile,
            "seed": self.seed,
            "answer_bytes": self.answer_bytes,
            "fault_retry_after_s": self.fault_retry_after_s,
            "platforms": plats,
            "batch_processing_s": self.batch_processing_s,
            "batch_expire_after_s": self.batch_expire_after_s,
            "batch_create_delay_s": self.batch_create_delay_s,
        }

    def with_platform(self, name: str, **changes: Any) -> SimulatorConfig:
        """A copy with one platform's fields changed (validated)."""
        plats = dict(self.platforms)
        plats[name] = replace(self.platform(name), **changes)
        plats[name].validate(name)
        return replace(self, platforms=plats)
