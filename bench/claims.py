"""Benchmark 12: how workers claim pairs, INSERT ... ON CONFLICT vs FOR UPDATE SKIP LOCKED (issue 13).

A batch of N prompts x 4 platforms (`Store.import_prompts` + `Store.create_batch`, as the product makes
it) on a fresh database, then K claimer processes (1, 2, 4, 8), each with its own asyncio loop and
psycopg pool (`prompt_analyzer.db.open_pool`), and in each process one lane per platform, as in
`analyze worker`. A lane loops: get work, claim a group of 64 pairs (lease 600 s), mark every claimed
row done at once (one statement per group, standing in for the answers), until no pair is left.

- Variant **A** (the late claim, the product's workers' until 29ecc60): `Store.pending_pairs` reads a
  page of 64 pairs still to do (no lock, keyset `after` the page's last job), then `Store.claim_many`
  claims them with one `INSERT ... ON CONFLICT (analysis_job_id, platform) DO UPDATE ... WHERE <claimable>`. Lanes of
  several processes read the same page: the losers get None for the pairs taken (wasted reads and
  claims), and their INSERT waits for the winner's transaction to end.
- Variant **B**: one transaction: `SELECT ... FROM analysis_jobs j WHERE <pending for the platform>
  AND j.id > after ORDER BY j.id LIMIT 64 FOR UPDATE OF j SKIP LOCKED`, then `Store.claim_many`'s own
  statement (run inside that transaction) for exactly those jobs. A lane whose pick comes back empty
  from the batch's start while pairs are still pending (locked by another lane) waits 5 ms and picks
  again. Written here only: the product is not changed. SKIP LOCKED does not make B collision-free:
  the pick reads `ai_responses` in its statement's snapshot, so a job another lane claimed and
  committed just after that snapshot is unlocked again and picked; the claim's ON CONFLICT ... WHERE
  then returns None for it (counted as wasted, as in A).
- Variant **B0** (on request, `--variants A,B,B0`): B without the keyset (every pick scans from the
  batch's first job, as a textbook queue does).
- Variant **P** (the product since B won: `--variants A,P`): `Store.pick_pairs`, B's pick and claim in one
  statement (no attempt counted), then `Store.count_attempts` for the claimed pairs (one statement per
  group, as the product's grouped counter before the calls), then the answers; the walk starts over
  once from the first job when a pick finds nothing further, as `engine.schedules.Picks` does.

Per variant and K: pairs claimed per second (wall clock from the start barrier to the last lane
done), claim statements, claims that returned nothing and pairs offered to a claim that came back None
(wasted), Postgres transactions per claimed pair (`pg_stat_database.xact_commit` delta, read from
another database so that the reading does not count; it includes the pool's connection checks) and
the transactions the lanes opened themselves, deadlocks (`pg_stat_database.deadlocks`; a statement
that deadlocks is retried after the product's first backoff step, `DB_FIRST_S`, as `RetryingCalls`
does), Postgres CPU per pair (the backends of the run, by psutil, while they live), lock waits
(`pg_stat_activity` sampled every 20 ms from another database: share of samples with a backend
waiting on a lock, mean waiters, which lock), and the correctness check: every pair claimed exactly
once (one row per pair, `attempts = 1` on every row, every row `success`, the lanes' claimed counts
summing to the pair count, no claim lost before its answer).

The database holds an earlier batch over the same prompts, every pair answered (`--history 1`), and
is analysed before the run: a tracker's database the day after (statistics of an empty `ai_responses`
gave variant B's pick a nested loop over every response). `--pgbouncer` puts a fresh PgBouncer in
transaction mode (tests/db/pgbouncer.py) between each run's claimers and the server.

`--answers locking` wraps the one UPDATE as `Store.record_successes` does: in one transaction the
jobs' rows locked `FOR UPDATE` in id order (the store's `_LOCK_JOBS`), the UPDATE, the jobs' counters
recomputed (`_RECOMPUTE_JOBS`): the case where answers and SKIP LOCKED contend for the same job rows.
`--answers product` calls `Store.record_successes` itself (one UPDATE per answer, `WHERE id = %s AND
status <> 'success'`: with statistics taken while every response was a success, PostgreSQL plans it as
a scan of the partial index `ai_responses_unfinished_idx`, not a primary-key lookup, so each answer
costs more as the run's claims fill that index; `--drop-index ai_responses_unfinished_idx` shows the
same run with the primary-key plan).

The machine has 2 cores: with more processes than cores, pairs per second measure the machine; the
per-pair costs and the wasted claims are what carry over. The load average at start and end of each
run is kept.

    .venv/bin/python bench/claims.py [--prompts 5000] [--workers 1,2,4,8] [--variants A,B] [--group 64]
                                     [--answers cheap|locking|product] [--history 1] [--drop-index NAME]
                                     [--pgbouncer] [--repeat 1] [--name claims]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import queue
import random
import resource
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from prompt_analyzer.backoff import DB_FIRST_S
from prompt_analyzer.db import NewPrompt, PairWork, Store, SuccessRecord, migrate, open_pool, resolve_target
from prompt_analyzer.db.store import _LOCK_JOBS, _PENDING_PAGE, _RECOMPUTE_JOBS

T = TypeVar("T")
LEASE_S = 600.0
ROUND_NONE = None  # no round: any error would be claimable again (none happens here)

# Variant B's pick: the product's page of pairs still to do (Store.pending_pairs' statement), locking the
# jobs it returns and skipping those another transaction holds; its claim is a second statement.
_PICK = _PENDING_PAGE + sql.SQL(" FOR UPDATE OF j SKIP LOCKED")

# The stand-in for the answers: one statement per group.  Its row count tells whether every claim was
# still this worker's when its answer came.
_DONE = """
UPDATE ai_responses SET status = 'success', response_text = 'bench', claimed_by = NULL, claim_expires_at = NULL,
       updated_at = now()
WHERE id = ANY(%(ids)s::uuid[]) AND claimed_by = %(owner)s AND status = 'processing'
"""

_COUNTERS = """
SELECT xact_commit, xact_rollback, deadlocks, tup_inserted, tup_updated, tup_deleted, blks_hit, blks_read
FROM pg_stat_database WHERE datname = %s
"""

_ACTIVITY = """
SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid()
"""


# ----------------------------------------------------------------------------- a claimer process


@dataclass
class LaneStats:
    reads: int = 0  # variant A: Store.pending_pairs calls
    claims: int = 0  # claim statements (A) or pick-and-claim transactions (B)
    empty_claims: int = 0  # claims of at least one pair that got none (every pair offered was taken)
    offered: int = 0  # pairs put to a claim
    claimed: int = 0  # pairs the claims returned
    wasted_pairs: int = 0  # offered, came back None (another worker holds it)
    lost_at_answer: int = 0  # claimed, but no longer this worker's when its answer was written
    waits: int = 0  # variant B: pick empty from the start while pairs were still pending (locked): waited 5 ms
    passes: int = 0  # keyset passes over the batch
    retried: int = 0  # deadlock detected (or a serialization failure): retried after DB_FIRST_S, as the product
    own_transactions: int = 0  # transactions the lane opened (reads, claims, answers, checks)
    claim_s: list[float] = field(default_factory=list)  # get work + claim, per group


class _InTransaction:
    """A stand-in pool whose one connection is the caller's open transaction: `Store.claim_many` runs its
    own statement inside it (variant B reuses the product's INSERT, not a copy)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        yield self.conn


async def _retrying(st: LaneStats, fn: Callable[[], Awaitable[T]]) -> T:
    """As the product's RetryingCalls does for a deadlock (an OperationalError in psycopg): wait its first
    backoff step (DB_FIRST_S), then the same call again."""
    while True:
        try:
            return await fn()
        except (psycopg.errors.DeadlockDetected, psycopg.errors.TransactionRollback):
            st.retried += 1
            await asyncio.sleep(DB_FIRST_S)


class Lane:
    def __init__(self, store: Store, batch_id: uuid.UUID, platform: str, *, owner: str, group: int,
                 answers: str) -> None:
        self.store, self.batch_id, self.platform = store, batch_id, platform
        self.owner, self.group, self.answers = owner, group, answers
        self.st = LaneStats()

    async def answer(self, claimed: Sequence[tuple[PairWork, uuid.UUID]]) -> None:
        st = self.st
        st.own_transactions += 1
        if self.answers == "product":
            recs = [SuccessRecord(rid, p.job_id, "bench", "bench", 1, 1, 2, Decimal(0), 1, {}, [])
                    for p, rid in claimed]
            await _retrying(st, lambda: self.store.record_successes(recs))
            return

        params = {"ids": [rid for _, rid in claimed], "owner": self.owner,
                  "jobs": sorted({p.job_id for p, _ in claimed})}

        async def done() -> int:
            if self.answers == "locking":  # record_successes' job locks and counters around the one UPDATE
                async with self.store.pool.connection() as conn, conn.pipeline(), conn.transaction():
                    await conn.execute(_LOCK_JOBS, params)
                    cur = await conn.execute(_DONE, params)
                    await conn.execute(_RECOMPUTE_JOBS, params)
                return cur.rowcount
            async with self.store.pool.connection() as conn:
                cur = await conn.execute(_DONE, params)
                return cur.rowcount

        n = await _retrying(st, done)
        st.lost_at_answer += len(claimed) - n

    async def run_a(self) -> None:
        """The late claim (the product's workers' until 29ecc60): an unlocked page, then one INSERT ... ON
        CONFLICT claim."""
        st, after = self.st, None
        st.passes = 1
        while True:
            t0 = time.perf_counter()
            page = await _retrying(st, lambda a=after: self.store.pending_pairs(
                self.batch_id, self.platform, after=a, limit=self.group))
            st.reads += 1
            st.own_transactions += 1
            if not page:
                if after is None:
                    return
                after = None
                st.passes += 1
                continue
            after = page[-1].job_id
            ids = await _retrying(st, lambda p=page: self.store.claim_many([(x, LEASE_S) for x in p],
                                                                         owner=self.owner))
            st.own_transactions += 1
            st.claim_s.append(time.perf_counter() - t0)
            self._count(page, ids)
            got = [(p, i) for p, i in zip(page, ids, strict=True) if i is not None]
            if got:
                await self.answer(got)

    async def _walk_ended(self, after: uuid.UUID | None) -> bool:
        """A pick found nothing after ``after``: True if the lane is done.  A walk that began mid-way
        starts over; one from the first job is done unless pairs are still pending under another
        transaction's lock (`Store.lane_pending`; then wait 5 ms and pick again)."""
        st = self.st
        if after is not None:
            st.passes += 1
            return False
        pending = await _retrying(st, lambda: self.store.lane_pending(self.batch_id, self.platform))
        st.own_transactions += 1
        if not pending:
            return True
        st.waits += 1
        await asyncio.sleep(0.005)
        return False

    async def run_b(self, *, keyset: bool = True) -> None:
        """SELECT ... FOR UPDATE OF j SKIP LOCKED and the same claim statement, in one transaction."""
        st, after = self.st, None
        st.passes = 1
        while True:
            t0 = time.perf_counter()

            async def pick_and_claim(a: uuid.UUID | None = after) -> tuple[list[PairWork], list[uuid.UUID | None]]:
                async with self.store.pool.connection() as conn, conn.transaction():
                    cur = await conn.execute(_PICK, {"b": self.batch_id, "pl": self.platform, "n": self.group,
                                                     "after": a or uuid.UUID(int=0), "round": ROUND_NONE})
                    rows = await cur.fetchall()
                    page = [PairWork(r["job"], r["prompt"], r["project"], r["txt"], self.platform) for r in rows]
                    if not page:
                        return [], []
                    inside = Store(_InTransaction(conn))  # type: ignore[arg-type]
                    return page, await inside.claim_many([(x, LEASE_S) for x in page], owner=self.owner)

            page, ids = await _retrying(st, pick_and_claim)
            st.own_transactions += 1
            if not page:
                if await self._walk_ended(after):
                    return
                after = None
                continue
            if keyset:
                after = page[-1].job_id
            st.claim_s.append(time.perf_counter() - t0)
            self._count(page, ids)
            got = [(p, i) for p, i in zip(page, ids, strict=True) if i is not None]
            if got:
                await self.answer(got)

    async def run_p(self) -> None:
        """The product's pick (`Store.pick_pairs`), its attempts counted, then the answers."""
        st, after = self.st, None
        st.passes = 1
        while True:
            t0 = time.perf_counter()
            picked = await _retrying(st, lambda a=after: self.store.pick_pairs(
                self.batch_id, self.platform, after=a, limit=self.group, owner=self.owner, lease_s=LEASE_S))
            st.own_transactions += 1
            if picked.last_job is None:
                if await self._walk_ended(after):
                    return
                after = None
                continue
            after = picked.last_job
            claimed = [(p, p.response_id) for p in picked.pairs if p.response_id is not None]
            if claimed:
                ours = await _retrying(st, lambda c=claimed: self.store.count_attempts(
                    [(rid, LEASE_S) for _, rid in c], owner=self.owner))
                st.own_transactions += 1
                claimed = [x for x, ok in zip(claimed, ours, strict=True) if ok]
            st.claim_s.append(time.perf_counter() - t0)
            st.claims += 1
            st.claimed += len(claimed)
            st.offered += len(picked.pairs) + picked.missed
            st.wasted_pairs += picked.missed
            if not claimed:
                st.empty_claims += 1
            if claimed:
                await self.answer(claimed)

    def _count(self, page: Sequence[PairWork], ids: Sequence[uuid.UUID | None]) -> None:
        st = self.st
        st.claims += 1
        n = sum(1 for i in ids if i is not None)
        st.offered += len(page)
        st.claimed += n
        st.wasted_pairs += len(page) - n
        if n == 0:
            st.empty_claims += 1


@dataclass(frozen=True)
class ChildArgs:
    url: str
    batch_id: uuid.UUID
    variant: str
    group: int
    answers: str
    platforms: tuple[str, ...]
    pooler: str = "auto"  # "transaction" through PgBouncer: no prepared statements, as the product


def _child(args: ChildArgs, ready: Any, start: Any, end: Any, results: Any) -> None:
    asyncio.run(_child_main(args, ready, start, end, results))


async def _child_main(args: ChildArgs, ready: Any, start: Any, end: Any, results: Any) -> None:
    lanes_n = len(args.platforms)
    pool = await open_pool(resolve_target(args.url, args.pooler), max_size=lanes_n, min_size=lanes_n)
    store = Store(pool)
    owner = f"{socket.gethostname()}:{os.getpid()}:bench-claims"
    lanes = [Lane(store, args.batch_id, p, owner=owner, group=args.group, answers=args.answers)
             for p in args.platforms]
    try:
        # Every pool connection open before the start: the run measures claiming, not connecting.
        conns = [await pool.getconn() for _ in range(lanes_n)]
        for conn in conns:
            await pool.putconn(conn)
        await asyncio.to_thread(ready.wait, 300)  # the parent reads the counters and our backends' CPU
        await asyncio.to_thread(start.wait, 300)
        t0 = time.monotonic()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)

        async def one(lane: Lane) -> None:
            if args.variant == "A":
                await lane.run_a()
            elif args.variant == "P":
                await lane.run_p()
            else:
                await lane.run_b(keyset=args.variant == "B")

        async with asyncio.TaskGroup() as tg:
            for lane in lanes:
                tg.create_task(one(lane))
        t1 = time.monotonic()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        results.put({"pid": os.getpid(), "t0": t0, "t1": t1,
                     "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
                     "lanes": {lane.platform: asdict(lane.st) for lane in lanes}})
        await asyncio.to_thread(end.wait, 3600)  # the parent reads our backends' CPU while they live
    finally:
        await pool.close()


# ----------------------------------------------------------------------------- the parent


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(c.ADMIN_URL, autocommit=True)


def _counters(dbname: str) -> dict[str, int]:
    with _admin() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(_COUNTERS, (dbname,)).fetchone()
    keys = ("xact_commit", "xact_rollback", "deadlocks", "tup_inserted", "tup_updated", "tup_deleted", "blks_hit",
            "blks_read")
    assert row is not None
    return dict(zip(keys, (int(v) for v in row), strict=True))


# An earlier batch's answers: every pair of the batch a success, as a tracker's database holds the day after.
_ANSWERED = """
WITH r AS (
    INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform, prompt_text, response_text,
                              status, attempts)
    SELECT j.id, j.prompt_tracking_id, j.project_id, x.platform, 'earlier', 'earlier', 'success', 1
    FROM analysis_jobs j CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
    WHERE j.batch_id = %(b)s),
jobs AS (
    UPDATE analysis_jobs SET status = 'completed', completed_platforms = total_platforms, completed_at = now()
    WHERE batch_id = %(b)s)
UPDATE analysis_batches SET status = 'completed', completed_jobs = total_jobs, completed_at = now() WHERE id = %(b)s
"""


async def _seed(url: str, prompts: int, platforms: Sequence[str], history: int) -> uuid.UUID:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn)
    pool = await open_pool(resolve_target(url), max_size=2)
    store = Store(pool)
    try:
        rng = random.Random(1)
        projects = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(10)]
        await store.import_prompts([NewPrompt(projects[i % 10], f"What are the best CRM tools for a team of "
                                                                f"{i % 97 + 2} in 2025? (#{i})")
                                    for i in range(prompts)])
        for day in range(history):
            earlier, _ = await store.create_batch(key=f"bench-claims-earlier-{day}", trigger="bench",
                                                  platforms=list(platforms))
            async with pool.connection() as conn:
                await conn.execute(_ANSWERED, {"b": earlier.id})
        batch, created = await store.create_batch(key="bench-claims", trigger="bench", platforms=list(platforms))
        assert created
        return batch.id
    finally:
        await store.close()


def fresh_seeded_database(prompts: int, platforms: Sequence[str], history: int,
                          drop_index: str | None = None) -> tuple[str, str, uuid.UUID]:
    name = f"bench_claims_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = c.ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    batch_id = asyncio.run(_seed(url, prompts, platforms, history))
    with psycopg.connect(url, autocommit=True) as conn:
        if drop_index:  # a diagnosis: the plans PostgreSQL makes without this index
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(drop_index)))
        # Statistics of a database in use (the earlier batches' answers), the same plans in every run, no
        # autovacuum mid-run.  Statistics of an empty ai_responses table made the planner scan every
        # response for each job in variant B's pick (a nested loop over a materialized scan).
        conn.execute("VACUUM ANALYZE")
    return url, name, batch_id


class Sampler:
    """pg_stat_activity of the run's database every ``every`` s, from the admin database (its queries do
    not count in the run's transactions); and the CPU of the run's backends while they live."""

    def __init__(self, dbname: str, every: float = 0.02) -> None:
        self.dbname, self.every = dbname, every
        self.samples = 0
        self.samples_waiting = 0
        self.waiters = 0
        self.max_waiters = 0
        self.events: Counter[str] = Counter()
        self.active: Counter[str] = Counter()  # active backends by wait ("CPU": none), summed over samples
        self.cpu: dict[int, float] = {}
        self.cpu0: dict[int, float] = {}
        self.stop = threading.Event()
        self.conn = _admin()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(_ACTIVITY, (self.dbname,)).fetchall()]

    def backend_cpu(self) -> dict[int, float]:
        out = {}
        for pid in self._pids():
            try:
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def start(self) -> None:
        self.cpu0 = self.backend_cpu()
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            rows = self.conn.execute(_ACTIVITY, (self.dbname,)).fetchall()
            waiting = [r for r in rows if r[2] == "Lock"]
            self.samples += 1
            self.active.update(f"{r[2]}:{r[3]}" if r[2] else "CPU" for r in rows if r[1] == "active")
            if waiting:
                self.samples_waiting += 1
                self.waiters += len(waiting)
                self.max_waiters = max(self.max_waiters, len(waiting))
                self.events.update(str(r[3]) for r in waiting)
            self.stop.wait(self.every)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        self.cpu = self.backend_cpu()
        self.conn.close()

    def pg_cpu_s(self) -> float:
        return sum(v - self.cpu0.get(pid, 0.0) for pid, v in self.cpu.items())


def _check(url: str, batch_id: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        expected = conn.execute(
            "SELECT coalesce(sum(cardinality(platforms)), 0) FROM analysis_jobs WHERE batch_id = %s", (batch_id,)
        ).fetchone()
        row = conn.execute(
            """SELECT count(*), count(DISTINCT (r.analysis_job_id, r.platform)),
                      count(*) FILTER (WHERE r.attempts <> 1), coalesce(max(r.attempts), 0),
                      count(*) FILTER (WHERE r.status <> 'success')
               FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id WHERE j.batch_id = %s""",
            (batch_id,)).fetchone()
    assert expected is not None and row is not None
    return {"pairs": int(expected[0]), "rows": int(row[0]), "distinct_pairs": int(row[1]),
            "rows_attempts_not_1": int(row[2]), "max_attempts": int(row[3]), "rows_not_success": int(row[4])}


def _pct(xs: Sequence[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _results(results: Any, procs: Sequence[Any], within_s: float = 3600) -> list[dict[str, Any]]:
    """Every process's figures; a process that died (its traceback is on stderr) ends the benchmark."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=1))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"claimer process(es) failed: exit {[p.exitcode for p in dead]}") from None
    return got


def run_one(variant: str, k: int, args: argparse.Namespace) -> dict[str, Any]:
    platforms = c.PLATFORMS
    url, name, batch_id = fresh_seeded_database(args.prompts, platforms, args.history, args.drop_index)
    ctx = mp.get_context("spawn")
    stack = ExitStack()
    try:
        bouncer = None
        if args.pgbouncer:  # the test suite's PgBouncer (pool_mode = transaction), a fresh one for each run
            from tests.db.pgbouncer import pgbouncer

            bouncer = stack.enter_context(pgbouncer(url))
        ready, start, end = (ctx.Barrier(k + 1) for _ in range(3))
        results = ctx.Queue()
        cargs = ChildArgs(bouncer or url, batch_id, variant, args.group, args.answers, tuple(platforms),
                          "transaction" if bouncer else "auto")
        procs = [ctx.Process(target=_child, args=(cargs, ready, start, end, results), daemon=True)
                 for _ in range(k)]
        for p in procs:
            p.start()
        sampler = Sampler(name)
        ready.wait(300)  # every process has its connections open
        time.sleep(1.5)  # idle backends flush their statistics within a second: db0 has the connections' own
        load0 = _load()
        db0 = _counters(name)
        sampler.start()
        busy0 = c._busy_jiffies()
        start.wait(300)  # go
        got = _results(results, procs)
        wall = max(r["t1"] for r in got) - min(r["t0"] for r in got)
        sampler.finish()  # our backends' CPU, read before they close
        busy = c._busy_jiffies() - busy0
        end.wait(60)
        for p in procs:
            p.join(60)
        # Closed backends flush their statistics on exit; PgBouncer's server connections stay open and
        # flush once idle for a second.
        time.sleep(2.5 if bouncer else 1.0)
        db1 = _counters(name)
        load1 = _load()
        check = _check(url, batch_id)
    finally:
        stack.close()  # PgBouncer, if any
        c.drop_database(name)
    lanes = [st for r in got for st in r["lanes"].values()]
    tot = {f: sum(st[f] for st in lanes) for f in ("reads", "claims", "empty_claims", "offered", "claimed",
                                                      "wasted_pairs", "lost_at_answer", "waits", "passes", "retried",
                                                      "own_transactions")}
    claim_s = [x for st in lanes for x in st["claim_s"]]
    delta = {key: db1[key] - db0[key] for key in db0}
    pairs = check["pairs"]
    claimed = tot["claimed"]
    correct = (check["rows"] == pairs and check["distinct_pairs"] == pairs and check["rows_attempts_not_1"] == 0
               and check["rows_not_success"] == 0 and claimed == pairs and tot["lost_at_answer"] == 0)
    return {
        "variant": variant, "workers": k, "lanes_per_worker": len(platforms), "group": args.group,
        "answers": args.answers, "through_pgbouncer": bouncer is not None, "history_batches": args.history,
        "dropped_index": args.drop_index, "pairs": pairs,
        "wall_s": round(wall, 3), "pairs_per_s": round(claimed / wall, 1),
        "claim_statements": tot["claims"], "reads": tot["reads"], "empty_claims": tot["empty_claims"],
        "empty_claims_pct": round(100 * tot["empty_claims"] / max(1, tot["claims"]), 2),
        "pairs_offered": tot["offered"], "pairs_claimed": claimed, "wasted_pairs": tot["wasted_pairs"],
        "wasted_pairs_pct": round(100 * tot["wasted_pairs"] / max(1, tot["offered"]), 2),
        "mean_pairs_per_claim": round(claimed / max(1, tot["claims"]), 1),
        "waits_for_locked": tot["waits"], "passes": tot["passes"], "retried_deadlocks": tot["retried"],
        "claim_ms_p50": round(1000 * _pct(claim_s, 0.5), 2), "claim_ms_p95": round(1000 * _pct(claim_s, 0.95), 2),
        "transactions_per_pair": round(delta["xact_commit"] / max(1, claimed), 4),
        "own_transactions_per_pair": round(tot["own_transactions"] / max(1, claimed), 4),
        "rollbacks": delta["xact_rollback"], "deadlocks": delta["deadlocks"],
        "postgres": {"delta": delta},
        "cpu_ms_per_pair": {"claimers": round(1000 * sum(r["cpu_s"] for r in got) / max(1, claimed), 4),
                            "postgres_backends": round(1000 * sampler.pg_cpu_s() / max(1, claimed), 4),
                            "machine_total": round(1000 * busy / max(1, claimed), 4)},
        "lock_waits": {"samples": sampler.samples, "samples_with_waiter": sampler.samples_waiting,
                       "pct_samples_with_waiter": round(100 * sampler.samples_waiting / max(1, sampler.samples), 2),
                       "mean_waiters": round(sampler.waiters / max(1, sampler.samples), 3),
                       "max_waiters": sampler.max_waiters, "by_event": dict(sampler.events),
                       "active_backends_by_wait": dict(sampler.active.most_common())},
        "check": {**check, "claimed_by_lanes": claimed, "lost_at_answer": tot["lost_at_answer"], "correct": correct},
        "loadavg": {"start": load0, "end": load1},
        "per_process": [{"pid": r["pid"], "wall_s": round(r["t1"] - r["t0"], 3), "cpu_s": round(r["cpu_s"], 3),
                         "claimed": sum(st["claimed"] for st in r["lanes"].values())} for r in got],
    }


HEADER = ("| variant | K | pairs/s | wall s | claims | empty claims | wasted pairs | pairs/claim | claim ms p50/p95 "
          "| xact/pair | own xact/pair | PG CPU ms/pair | lock-wait samples | deadlocks | correct | load start→end |")


def row(r: dict[str, Any]) -> str:
    lw = r["lock_waits"]
    return (f"| {r['variant']} | {r['workers']} | {r['pairs_per_s']:.0f} | {r['wall_s']:.1f} | {r['claim_statements']} "
            f"| {r['empty_claims']} ({r['empty_claims_pct']}%) | {r['wasted_pairs']} ({r['wasted_pairs_pct']}%) "
            f"| {r['mean_pairs_per_claim']} | {r['claim_ms_p50']:.1f} / {r['claim_ms_p95']:.1f} "
            f"| {r['transactions_per_pair']:.4f} | {r['own_transactions_per_pair']:.4f} "
            f"| {r['cpu_ms_per_pair']['postgres_backends']:.3f} | {lw['pct_samples_with_waiter']}% "
            f"| {r['deadlocks']} | {'yes' if r['check']['correct'] else 'NO'} "
            f"| {r['loadavg']['start'][0]} → {r['loadavg']['end'][0]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=5000, help="prompts; pairs = prompts x 4 platforms")
    ap.add_argument("--workers", default="1,2,4,8", help="claimer processes, comma-separated")
    ap.add_argument("--variants", default="A,B",
                    help="A (late claim), B (SKIP LOCKED), B0 (B, no keyset), P (the product's pick)")
    ap.add_argument("--group", type=int, default=64, help="pairs per claim")
    ap.add_argument("--answers", choices=("cheap", "locking", "product"), default="cheap")
    ap.add_argument("--history", type=int, default=1,
                    help="earlier batches over the same prompts, every pair answered (the database the day after)")
    ap.add_argument("--drop-index", metavar="NAME",
                    help="diagnosis: drop this index after seeding (e.g. ai_responses_unfinished_idx)")
    ap.add_argument("--pgbouncer", action="store_true",
                    help="the claimers connect through PgBouncer in transaction mode (tests/db/pgbouncer.py)")
    ap.add_argument("--repeat", type=int, default=1, help="run the whole grid this many times (interleaved)")
    ap.add_argument("--name", default="claims", help="bench/results/<name>.json")
    args = ap.parse_args()
    ks = [int(x) for x in args.workers.split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    for v in variants:
        if v not in ("A", "B", "B0", "P"):
            ap.error(f"unknown variant {v!r}")
    m = c.machine()
    c.print_machine(m)
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        for k in ks:
            for v in variants:  # interleaved: the machine's drift spreads over both variants
                c.say(f"run {rep + 1}/{args.repeat}: variant {v}, {k} process(es), {args.prompts * 4} pairs, "
                      f"answers {args.answers}, load {_load()}")
                r = run_one(v, k, args)
                r["repeat"] = rep + 1
                runs.append(r)
                c.say(HEADER)
                c.say(row(r))
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for r in runs:
        print(row(r))
    medians = {}
    if args.repeat > 1:
        for v in variants:
            for k in ks:
                xs = [r["pairs_per_s"] for r in runs if r["variant"] == v and r["workers"] == k]
                medians[f"{v}/{k}"] = {"pairs_per_s_median": statistics.median(xs), "pairs_per_s": xs}
        for key, val in medians.items():
            print(f"{key}: median {val['pairs_per_s_median']:.0f} pairs/s of {val['pairs_per_s']}")
    m["loadavg_at_end"] = _load()
    c.save(args.name, {"benchmark": "claims", "machine": m,
                       "params": {"prompts": args.prompts, "pairs": args.prompts * 4, "workers": ks,
                                  "variants": variants, "group": args.group, "lease_s": LEASE_S,
                                  "answers": args.answers, "history": args.history, "drop_index": args.drop_index,
                                  "pgbouncer": args.pgbouncer, "repeat": args.repeat},
                       "runs": runs, "medians": medians})


if __name__ == "__main__":
    main()
