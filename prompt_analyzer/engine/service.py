"""What the commands ask of the engine: start, resume or rerun a batch, run one prompt, report.

No SQL here (the store has it) and no wire formats (the providers have them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..config import PLATFORMS, ConfigError, Settings
from ..db import BatchRow, Database
from ..db.provider_batches import ProviderBatches
from ..providers import Provider, make_provider
from ..providers.batch import BatchClient, batch_support, make_batch_client
from ..statuses import FINISHED
from .batch_mode import BatchModeRunner, BatchPlan
from .figures import BatchReport, PlatformFigures, TopErrorEntry
from .runner import BatchFinished, Outcome, Runner
from .spool import Spool


class NotFound(LookupError):
    pass


@dataclass
class Prepared:
    runner: Runner
    batch: BatchRow
    created: bool
    skipped: list[str] = field(default_factory=list)  # platforms without a key
    notes: list[str] = field(default_factory=list)  # batch mode: platforms that run live, and why


def default_key(now: datetime | None = None) -> str:
    return f"daily:{(now or datetime.now(UTC)).date().isoformat()}"


def check_platforms(settings: Settings, names: Sequence[str]) -> list[str]:
    bad = [n for n in names if n not in settings.platforms]
    if bad:
        raise ConfigError(f"unknown platform {bad[0]!r} (known: {', '.join(settings.platform_names)})")
    return list(dict.fromkeys(names))


def _configured(settings: Settings, name: str) -> bool:
    """A platform a batch planned may since have left the configuration (a declared one removed)."""
    return name in settings.platforms and settings.platform(name).configured


def usable_platforms(settings: Settings, requested: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(platforms to ask, platforms skipped for lack of a key)."""
    wanted = (check_platforms(settings, requested) if requested
              else [p for p in settings.platform_names if settings.platform(p).enabled])
    usable = [p for p in wanted if settings.platform(p).configured]
    skipped = [p for p in wanted if not settings.platform(p).configured]
    if not usable:
        hint = ", ".join(settings.key_env(p)[0] for p in wanted if settings.key_env(p)) or "a platform"
        raise ConfigError(f"no platform is configured: set {hint} (or run `analyze demo` to try the simulator)")
    return usable, skipped


def provider_factory(settings: Settings) -> Callable[[str], Provider]:
    secrets = settings.secrets()
    return lambda name: make_provider(settings.platform(name), secrets=secrets)


def batch_factory(settings: Settings) -> Callable[[str], BatchClient]:
    secrets = settings.secrets()
    return lambda name: make_batch_client(settings.platform(name), secrets=secrets)


async def batch_plan(
    db: Database, settings: Settings, batch: BatchRow, platforms: Sequence[str], *, mode: str, detach: bool
) -> BatchPlan:
    """Which platforms go through their batch APIs.  In mode ``batch``: those with ``batch = true`` and
    a batch API (the others run live, and the notes say why); in mode ``live``: only those with provider
    batches still open from an earlier run, to collect them (nothing new is submitted)."""
    open_platforms = {pb.platform for pb in await ProviderBatches(db.store).for_batch(batch.id, open_only=True)}
    if mode != "batch":
        return BatchPlan([p for p in platforms if p in open_platforms], submit=False, wait=not detach)
    chosen: list[str] = []
    notes: list[str] = []
    for name in platforms:
        ps = settings.platform(name)
        why = "batch = false in its configuration" if not ps.batch else batch_support(ps)
        if why is None or name in open_platforms:
            chosen.append(name)
        else:
            notes.append(f"{name}: runs live ({why})")
    return BatchPlan(chosen, submit=True, wait=not detach, notes=notes)


async def _runner(
    db: Database, settings: Settings, platforms: Sequence[str], *, plan: BatchPlan | None = None, **kw: Any
) -> Runner:
    # The spool learns its database's identity now, while the database is up: it appends when it is down.
    spool = await Spool.open(settings.home, db.store)
    if plan is not None and plan.platforms:
        return BatchModeRunner(db.store, db.target, settings, platforms, provider_factory(settings),
                               batch_factory(settings), plan, spool=spool, **kw)
    return Runner(db.store, db.target, settings, platforms, provider_factory(settings), spool=spool, **kw)


async def replay_spool(db: Database, settings: Settings) -> int:
    """Answers a run could not write (database down) go in before anything else: this database's only."""
    spool = await Spool.open(settings.home, db.store)
    return (await spool.replay(db.store)).written


async def prepare_run(
    db: Database,
    settings: Settings,
    *,
    key: str,
    trigger: str,
    platforms: Sequence[str] = (),
    project_ids: Sequence[uuid.UUID] = (),
    prompt_ids: Sequence[uuid.UUID] = (),
    limit: int | None = None,
    extra_metadata: dict[str, Any] | None = None,
    mode: str | None = None,
    detach: bool = False,
) -> Prepared:
    usable, skipped = usable_platforms(settings, platforms)
    await replay_spool(db, settings)
    batch, created = await db.store.create_batch(
        key=key, trigger=trigger, platforms=usable, project_ids=project_ids, prompt_ids=prompt_ids, limit=limit
    )
    reopen = False
    if not created:
        # A finished batch is resumed only for the pairs a budget left uncalled (under a higher budget).
        if batch.status in FINISHED:
            if not await db.store.budget_exhausted_pairs(batch.id):
                raise BatchFinished(batch)
            reopen = True
        # Resume: ask what the batch was created to ask, minus platforms not configured now.
        planned = batch.platforms or usable
        usable = [p for p in planned if _configured(settings, p) and (not platforms or p in platforms)]
        skipped = [p for p in planned if p not in usable and not _configured(settings, p)]
        if not usable:
            raise ConfigError("none of this batch's platforms is configured now: " + ", ".join(planned))
    plan = await batch_plan(db, settings, batch, usable, mode=mode or settings.run.mode, detach=detach)
    runner = await _runner(db, settings, usable, plan=plan, extra_metadata=extra_metadata, reopen=reopen)
    return Prepared(runner, batch, created, skipped, plan.notes)


async def find_batch(db: Database, ref: str | None) -> BatchRow:
    """A batch by id, by idempotency key, or the last one (ref None)."""
    if ref is None:
        batch = await db.store.last_batch()
        if batch is None:
            raise NotFound("no batch has run yet")
        return batch
    try:
        batch = await db.store.get_batch(uuid.UUID(ref))
    except ValueError:
        batch = await db.store.get_batch_by_key(ref)
    if batch is None:
        raise NotFound(f"no batch {ref!r}")
    return batch


async def prepare_rerun(
    db: Database, settings: Settings, batch: BatchRow, platforms: Sequence[str] = ()
) -> Prepared:
    await replay_spool(db, settings)
    planned = list(batch.platforms or settings.platform_names)
    wanted = [p for p in planned if not platforms or p in check_platforms(settings, platforms)]
    usable = [p for p in wanted if _configured(settings, p)]
    skipped = [p for p in wanted if p not in usable]
    if not usable:
        raise ConfigError("none of the platforms to rerun is configured: " + ", ".join(wanted or platforms))
    plan = await batch_plan(db, settings, batch, usable, mode="live", detach=False)  # collects open provider batches
    runner = await _runner(db, settings, usable, plan=plan, reopen=True)
    return Prepared(runner, batch, False, skipped)


async def prepare_collect(db: Database, settings: Settings, batch: BatchRow) -> Prepared | None:
    """Collect a batch's open provider batches (one look each, nothing submitted, nothing called live);
    None when it has none."""
    await replay_spool(db, settings)
    open_platforms = {pb.platform for pb in await ProviderBatches(db.store).for_batch(batch.id, open_only=True)}
    planned = batch.platforms or settings.platform_names
    usable = [p for p in planned if p in open_platforms and _configured(settings, p)]
    missing = sorted(open_platforms - set(usable))
    if not usable:
        if missing:
            raise ConfigError("the open provider batches are of platforms not configured now: " + ", ".join(missing))
        return None
    plan = BatchPlan(usable, submit=False, wait=False, live=False)
    runner = await _runner(db, settings, usable, plan=plan)
    return Prepared(runner, batch, False, missing)


async def prepare_prompt(
    db: Database, settings: Settings, prompt_id: uuid.UUID, platforms: Sequence[str] = ()
) -> Prepared:
    prompt = await db.store.get_prompt(prompt_id)
    if prompt is None:
        raise NotFound(f"no prompt {prompt_id}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return await prepare_run(
        db, settings, key=f"prompt:{prompt_id}:{stamp}", trigger="prompt", platforms=platforms,
        prompt_ids=[prompt_id],
    )


# ---------------------------------------------------------------------------------- reports

def _num(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    return v


async def batch_report(db: Database, batch: BatchRow, outcome: Outcome | None = None) -> BatchReport:
    """The figures of a batch by platform, as ``status --json`` and ``run --json`` print them."""
    store = db.store
    stats = {r["platform"]: r for r in await store.platform_stats(batch.id)}
    counts = await store.pair_counts(batch.id)
    errors = await store.top_errors(batch.id)
    limits = await store.batch_limits(batch.id)
    platforms: dict[str, PlatformFigures] = {}
    for name in sorted(set(counts) | set(stats), key=lambda n: PLATFORMS.index(n) if n in PLATFORMS else 99):
        s, c = stats.get(name, {}), counts.get(name, {})
        entry: PlatformFigures = {
            "total": int(c.get("total", 0)),
            "success": int(c.get("success", 0)),
            "error": int(c.get("error", 0)),
            "processing": int(c.get("processing", 0)),
            "pending": int(c.get("pending", 0)),
            "tokens": int(s.get("tokens", 0) or 0),
            "cost_usd": round(float(s.get("cost", 0) or 0), 6),
            "p50_ms": _num(s.get("p50_ms")),
            "p95_ms": _num(s.get("p95_ms")),
            "attempts": int(s.get("attempts", 0) or 0),
            "top_errors": [
                TopErrorEntry({"class": e["error_class"], "message": e["message"], "count": int(e["n"])})
                for e in errors if e["platform"] == name
            ][:3],
        }
        if name in limits:
            entry["limits"] = limits[name]
        if outcome is not None and name in outcome.progress.platforms:
            pp = outcome.progress.platforms[name]
            entry["run"] = {"calls": pp.calls, "rate_limited": pp.rate_limited, "retries": pp.retries,
                            "circuit_open": pp.breaker}
        platforms[name] = entry
    report: BatchReport = {
        "batch_id": str(batch.id),
        "key": batch.idempotency_key,
        "trigger": batch.trigger,
        "status": batch.status,
        "total_jobs": batch.total_jobs,
        "completed_jobs": batch.completed_jobs,
        "failed_jobs": batch.failed_jobs,
        "started_at": batch.started_at.isoformat() if batch.started_at else None,
        "completed_at": batch.completed_at.isoformat() if batch.completed_at else None,
        "cost_usd": round(sum(p["cost_usd"] for p in platforms.values()), 6),
        "platforms": platforms,
    }
    if outcome is not None:
        report["duration_s"] = round(time.monotonic() - outcome.progress.started, 3)
        if outcome.interrupted_by:
            report["interrupted_by"] = outcome.interrupted_by
    return report
