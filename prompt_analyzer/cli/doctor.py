"""`analyze doctor [--json]`: is this installation ready to run?  For operators and CI smoke runs.

Checks, in order: the configuration is valid; the database is reachable, migrated, and has row level
security on every table; each enabled platform has a key, and the provider accepts it (its models
list: free, no tokens), with the limits the provider states.  Exit 0 when all is well, 1 otherwise;
each problem is one line saying what to do.  No SQL and no wire formats here: the store and the
providers have them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import typer

from ..config import ConfigError, Settings
from ..db import DatabaseError, SchemaOutdated, open_database
from ..providers import AuthError, ProviderError, make_provider
from ..providers.base import BaseProvider
from ..redact import scrub
from ..report import print_json
from ._context import Invocation, invocation
from ._exec import EXIT_FAILED, EXIT_OK, execute, finish, out
from ._options import JsonOpt

CHECK_TIMEOUT_S = 20.0  # per platform: a provider that does not answer is a problem, not a hang


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ok(self, check: str, detail: str) -> None:
        self.checks.append({"check": check, "ok": True, "detail": detail})

    def problem(self, check: str, detail: str) -> None:
        self.checks.append({"check": check, "ok": False, "detail": detail})

    @property
    def problems(self) -> list[str]:
        return [f"{c['check']}: {c['detail']}" for c in self.checks if not c["ok"]]

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, "problems": self.problems, "checks": self.checks,
                "platforms": self.platforms}


def _limits_text(limits: Any) -> str:
    if limits is None:
        return "no limits stated (paced from rpm, or learned from 429s)"
    d = limits.to_dict()
    parts = [f"{d[k]:,.0f} {label}" for k, label in (("rpm", "rpm"), ("tpm", "tpm"), ("input_tpm", "input tpm"),
                                                     ("output_tpm", "output tpm"), ("rpd", "rpd")) if k in d]
    return "limits stated: " + (", ".join(parts) if parts else "none")


async def _database(settings: Settings, report: Report) -> None:
    try:
        db = await open_database(settings, auto_migrate=None if settings.database.url is None else False)
    except SchemaOutdated as e:
        report.problem("database", str(e))
        return
    except DatabaseError as e:  # unreachable, or a bad URL
        report.problem("database", f"{e}: check DATABASE_URL and that the server is up")
        return
    try:
        report.ok("database", f"{db.description}: reachable and migrated")
        missing = await db.store.tables_without_rls()
        if missing:
            report.problem("rls", f"row level security is off on {', '.join(missing)}: run `analyze db migrate`, "
                                  "or ALTER TABLE ... ENABLE ROW LEVEL SECURITY")
        else:
            report.ok("rls", "row level security is on for every table")
    finally:
        await db.close()


def _client(settings: Settings, name: str, report: Report) -> BaseProvider | None:
    """The platform's client, made before any check is timed (importing an SDK takes a while and holds
    the event loop); None, with the problem reported, when it cannot be made."""
    ps = settings.platform(name)
    entry: dict[str, Any] = {"ok": False, "model": ps.model}
    report.platforms[name] = entry
    if not ps.configured:
        env = " or ".join(settings.key_env(name)) or f"platforms.{name}.api_key_env"
        entry["problem"] = f"no API key: set {env}, or set platforms.{name}.enabled = false"
    else:
        try:
            made = make_provider(ps, secrets=settings.secrets())
        except (ValueError, ProviderError) as e:
            entry["problem"] = scrub(f"{e}: check platforms.{name}", settings.secrets())
        else:
            if isinstance(made, BaseProvider):
                return made
            entry["problem"] = f"its client cannot list models: check platforms.{name}.kind"
    report.problem(name, entry["problem"])
    return None


async def _platform(settings: Settings, name: str, provider: BaseProvider, report: Report) -> None:
    ps = settings.platform(name)
    entry = report.platforms[name]
    secrets = settings.secrets()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            listed = await provider.list_models()
    except AuthError as e:
        env = " or ".join(settings.key_env(name))
        entry["problem"] = f"the key was refused ({e.message}): check {env}"
    except TimeoutError:
        entry["problem"] = f"no answer within {CHECK_TIMEOUT_S:.0f} s from {ps.base_url or 'the provider'}"
    except ProviderError as e:
        entry["problem"] = f"{e.message}: check the base URL and the network"
    except (ValueError, NotImplementedError) as e:
        entry["problem"] = f"{e}: check platforms.{name}.kind"
    else:
        entry.update(ok=True, models=len(listed.models), model_listed=ps.model in listed.models,
                     limits=listed.limits.to_dict() if listed.limits else None)
        seen = "" if ps.model in listed.models else f" ({ps.model} not among the first {len(listed.models)} listed)"
        report.ok(name, f"key accepted, {len(listed.models)} models{seen}; {_limits_text(listed.limits)}")
        return
    finally:
        await provider.aclose()
    entry["problem"] = scrub(entry["problem"], secrets)
    report.problem(name, entry["problem"])


async def diagnose(inv: Invocation) -> Report:
    report = Report()
    try:
        settings = inv.load_settings()
    except ConfigError as e:
        where = f" in {inv.config}" if inv.config else ""
        report.problem("config", f"{e}: fix it{where}")
        return report
    enabled = [n for n in settings.platform_names if settings.platform(n).enabled]
    report.ok("config", f"{settings.source or 'built-in defaults'}; platforms enabled: {', '.join(enabled) or 'none'}")
    if not enabled:
        report.problem("config", "no platform is enabled: set platforms.<name>.enabled = true")
    await _database(settings, report)
    clients = {n: _client(settings, n, report) for n in enabled}
    await asyncio.gather(*(_platform(settings, n, c, report) for n, c in clients.items() if c is not None))
    report.checks.sort(key=lambda c: _ORDER.get(c["check"], len(_ORDER)))
    return report


_ORDER = {"config": 0, "database": 1, "rls": 2}


def doctor(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Check the configuration, the database and each enabled platform's key; exit 0 when all is well."""
    inv = invocation(ctx)

    async def go() -> int:
        report = await diagnose(inv)
        if json_mode:
            print_json(report.as_json())
        else:
            for c in report.checks:
                out.print(f"{'ok     ' if c['ok'] else 'PROBLEM'}  {c['check']}: {c['detail']}", markup=False)
        return EXIT_OK if not report.problems else EXIT_FAILED

    finish(execute(inv, go))
