"""Every SQL statement of the project.

Async psycopg 3 over a psycopg_pool pool; rows come back as dicts.  Large reads are keyset-paged
(memory does not grow with the number of prompts), large writes are set-based (one statement creates
a batch's jobs, however many prompts there are).

The unit of work is a (job, platform) pair.  Its state is the ``ai_responses`` row: no row = pending,
``processing`` = claimed by ``claimed_by`` until ``claim_expires_at``, then ``success`` or ``error``.
A pair that succeeded is never claimed again.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from ..statuses import BatchStatus, ErrorClass

Row = dict[str, Any]
_TABLE_KINDS = ["r", "p"]  # pg_class.relkind of tables: ordinary and partitioned


@dataclass(frozen=True, slots=True)
class NewPrompt:
    project_id: uuid.UUID
    prompt_text: str
    is_active: bool = True
    platforms: list[str] | None = None


@dataclass(frozen=True, slots=True)
class BatchRow:
    """An ``analysis_batches`` row, read with psycopg's ``class_row`` (explicit columns: a later
    migration adding one changes nothing here)."""

    id: uuid.UUID
    idempotency_key: str | None
    trigger: str
    status: str
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    started_at: datetime | None
    completed_at: datetime | None
    platforms: list[str] | None
    filters: dict[str, Any]


_BATCH_COLUMNS = ("id, idempotency_key, trigger, status, total_jobs, completed_jobs, failed_jobs, started_at, "
                  "completed_at, platforms, filters")
_BATCH = sql.SQL(_BATCH_COLUMNS)
_BATCH_B = sql.SQL(", ".join(f"b.{c.strip()}" for c in _BATCH_COLUMNS.split(",")))


@dataclass(frozen=True, slots=True)
class PairWork:
    """A (job, platform) pair to call; ``response_id`` once a pick has claimed it (:meth:`Store.pick_pairs`)."""

    job_id: uuid.UUID
    prompt_id: uuid.UUID
    project_id: uuid.UUID
    prompt_text: str
    platform: str
    response_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Picked:
    """What a pick claimed, and where the next pick starts (None: nothing was left after ``after``)."""

    pairs: list[PairWork]
    last_job: uuid.UUID | None
    missed: int = 0  # pairs picked but claimed by another worker just before (after the pick's snapshot)


@dataclass(frozen=True, slots=True)
class Activity:
    """A batch's remaining work as one worker sees it after its pass (:meth:`Store.batch_activity`)."""

    todo: int  # pairs this worker could claim now (capped at 1000)
    held: int  # pairs other workers hold (live or expired claims)
    next_expiry: datetime | None  # the earliest of those claims' expiry


@dataclass(frozen=True, slots=True)
class CitationRow:
    position: int
    url: str
    domain: str
    title: str | None
    cited: bool
    site: str | None = None  # registrable domain (public-suffix list); None in rows of older versions
    metadata: dict[str, Any] | None = None  # e.g. Gemini's grounding redirect (providers.redirects)


@dataclass(slots=True)
class SuccessRecord:
    response_id: uuid.UUID
    job_id: uuid.UUID
    model_version: str | None
    response_text: str
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost: Decimal | None
    execution_time_ms: int
    metadata: dict[str, Any]
    citations: Sequence[CitationRow]


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One platform's calls still to make in a batch (or a batch to be), and what the history of those very
    (prompt, platform) pairs says about them: for ``known`` calls the sums of each pair's mean tokens and
    searches; for the rest only their prompts' length, for the platform-wide figures to fill in."""

    platform: str
    calls: int
    known: int
    known_input: Decimal
    known_output: Decimal
    known_searches: Decimal
    unknown_chars: int


@dataclass(frozen=True, slots=True)
class PlatformHistory:
    """A platform's successful answers in recent batches: what a call of it costs in tokens and time.
    ``input_overhead``: mean input tokens beyond the prompt's own (about a token per 4 characters):
    system text, search results."""

    platform: str
    answers: int
    input_overhead: Decimal
    output_tokens: Decimal
    searches: Decimal
    latency_ms: Decimal | None


@dataclass(frozen=True, slots=True)
class PlatformSpend:
    """What a batch has cost on one platform so far, over all its runs."""

    platform: str
    cost: Decimal


# PostgreSQL text and jsonb cannot hold U+0000 (a NUL makes the whole statement fail).  Whatever a
# provider sends is written with every NUL replaced by U+FFFD, the replacement character, so the
# answer is kept and the substitution stays visible.
# A lone UTF-16 surrogate (half an emoji, escaped in a provider's JSON as "\ud83d") cannot be encoded at
# all: it is replaced the same way.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def _text(value: str | None) -> str | None:
    return _UNSTORABLE.sub(_REPLACEMENT, value) if value is not None else value


def _clean(value: Any) -> Any:
    """``value`` (decoded JSON) with every NUL in its strings and keys replaced."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_clean(value), default=str, ensure_ascii=False)


# Recompute jobs' counters and status from their rows.  For one job, run it after locking the job row
# (_LOCK_JOB): under READ COMMITTED each statement then sees every earlier commit on that job.
_RECOMPUTE_TEMPLATE = """
UPDATE analysis_jobs j SET
    completed_platforms = s.ok,
    failed_platforms = s.err,
    status = CASE WHEN s.ok + s.err >= j.total_platforms
                  THEN CASE WHEN s.ok > 0 THEN 'completed' ELSE 'failed' END
                  WHEN s.ok + s.err + s.busy > 0 THEN 'running' ELSE 'pending' END,
    started_at = CASE WHEN s.ok + s.err + s.busy > 0 THEN coalesce(j.started_at, now()) END,
    completed_at = CASE WHEN s.ok + s.err >= j.total_platforms THEN coalesce(j.completed_at, now()) END,
    updated_at = now()
FROM (SELECT jj.id AS job,
             count(r.id) FILTER (WHERE r.status = 'success') AS ok,
             count(r.id) FILTER (WHERE r.status = 'error' AND r.error_class IS DISTINCT FROM 'interrupted') AS err,
             count(r.id) FILTER (WHERE r.status = 'processing') AS busy
      FROM analysis_jobs jj LEFT JOIN ai_responses r ON r.analysis_job_id = jj.id
      WHERE JOBS GROUP BY jj.id) s
WHERE j.id = s.job
"""
_RECOMPUTE_JOB = _RECOMPUTE_TEMPLATE.replace("JOBS", "jj.id = %(job)s")
_RECOMPUTE_BATCH_JOBS = _RECOMPUTE_TEMPLATE.replace("JOBS", "jj.batch_id = %(b)s")
_RECOMPUTE_JOBS = _RECOMPUTE_TEMPLATE.replace("JOBS", "jj.id = ANY(%(jobs)s::uuid[])")

# A page of a batch's pairs on one platform still to do in this round: not succeeded, not held by a live
# claim, not ended in error during the round (%(round)s) unless interrupted.  The batch's jobs are walked in
# id order and each job's row for the platform probed (one index lookup per job, stopping at the limit): a
# page costs the same at job 1 and at job 1,000,000.  Columns: job, prompt, project, pl, txt.
_PENDING_PAGE = sql.SQL("""
    SELECT j.id AS job, j.prompt_tracking_id AS prompt, j.project_id AS project, %(pl)s::text AS pl,
           (SELECT p.prompt_text FROM prompt_tracking p WHERE p.id = j.prompt_tracking_id) AS txt
    FROM analysis_jobs j
    WHERE j.batch_id = %(b)s AND j.id > %(after)s AND %(pl)s = ANY(j.platforms)
      AND NOT EXISTS (
          SELECT 1 FROM ai_responses r
          WHERE r.analysis_job_id = j.id AND r.platform = %(pl)s
            AND (r.status = 'success' OR (r.status = 'processing' AND r.claim_expires_at >= now())
                 OR (r.status = 'error' AND r.error_class IS DISTINCT FROM 'interrupted'
                     AND r.updated_at >= %(round)s::timestamptz)))
    ORDER BY j.id LIMIT %(n)s""")

# The claim of the pairs of a CTE ``todo`` (job, prompt, project, pl, txt, lease) for %(owner)s, counting
# %(count)s attempt(s): a pair is claimable when it has no row yet, its claim's lease expired (or is this
# owner's, or has none: a row no run of ours holds), or it ended in error before this round (%(round)s;
# NULL: any error) or was interrupted; a pair that succeeded is never claimed again.  Jobs with a claimed
# pair become ``running``.  CTE ``c``: the claims (id, analysis_job_id, platform).
_CLAIM = sql.SQL("""
    c AS (
      INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform,
                                prompt_text, status, attempts, claimed_by, claim_expires_at)
      SELECT job, prompt, project, pl, txt, 'processing', %(count)s, %(owner)s, now() + make_interval(secs => lease)
      FROM todo
      ON CONFLICT (analysis_job_id, platform) DO UPDATE SET
          status = 'processing', attempts = ai_responses.attempts + %(count)s,
          prompt_text = EXCLUDED.prompt_text, claimed_by = EXCLUDED.claimed_by,
          claim_expires_at = EXCLUDED.claim_expires_at, updated_at = now()
      WHERE (ai_responses.status = 'error'
             AND (ai_responses.error_class = 'interrupted' OR %(round)s::timestamptz IS NULL
                  OR ai_responses.updated_at < %(round)s::timestamptz))
         OR (ai_responses.status = 'processing'
             AND (ai_responses.claim_expires_at IS NULL OR ai_responses.claim_expires_at < now()
                  OR ai_responses.claimed_by = %(owner)s))
      RETURNING id, analysis_job_id, platform),
    running AS (
      UPDATE analysis_jobs SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now()
      WHERE id IN (SELECT analysis_job_id FROM c) AND status IN ('pending', 'completed', 'failed'))""")

_CLAIM_MANY = sql.SQL("""WITH todo AS (
      SELECT * FROM unnest(%(jobs)s::uuid[], %(prompts)s::uuid[], %(projects)s::uuid[],
                           %(pls)s::text[], %(texts)s::text[], %(leases)s::float8[])
               AS t(job, prompt, project, pl, txt, lease)),""") + _CLAIM + sql.SQL("""
    SELECT id, analysis_job_id, platform FROM c""")

# A pick: the next page of pairs still to do, their jobs locked for this statement with the ones another
# transaction holds skipped (SKIP LOCKED: two picks never wait for each other nor take the same job; NO KEY
# UPDATE: the key-share locks of rows being inserted for a job do not make a pick pass over it), and claimed
# in the same statement.  Every picked pair is returned, with its claim's id or NULL (the row changed after
# the statement's snapshot: another worker claimed it just before).  A job passed over because another
# transaction held it is found by a later walk (engine/schedules.py, Picks).
_PICK = sql.SQL("WITH page AS (") + _PENDING_PAGE + sql.SQL("""
      FOR NO KEY UPDATE OF j SKIP LOCKED),
    todo AS (SELECT page.*, %(lease)s::float8 AS lease FROM page),""") + _CLAIM + sql.SQL("""
    SELECT page.*, c.id AS response_id FROM page LEFT JOIN c ON c.analysis_job_id = page.job ORDER BY page.job""")
# The prompts a new batch asks and, per prompt, its platforms (the prompt's own, null = all, intersected
# with the batch's); a prompt with none left is skipped.  Shared by create_batch and the dry run's plan.
_CHOSEN_PROMPTS = sql.SQL("""WITH chosen AS (
                       SELECT p.id, p.project_id, length(p.prompt_text) AS chars,
                              ARRAY(SELECT x FROM unnest(%(platforms)s::text[]) AS x
                                    WHERE p.platforms IS NULL OR x = ANY(p.platforms)) AS plats
                       FROM prompt_tracking p
                       WHERE (p.is_active OR cardinality(%(prompts)s::uuid[]) > 0)
                         AND (cardinality(%(projects)s::uuid[]) = 0 OR p.project_id = ANY(%(projects)s::uuid[]))
                         AND (cardinality(%(prompts)s::uuid[]) = 0 OR p.id = ANY(%(prompts)s::uuid[]))
                       ORDER BY p.id),
                   limited AS (SELECT * FROM chosen WHERE cardinality(plats) > 0 LIMIT %(limit)s)""")

SEARCHES_KEY = "searches"  # metadata key of the web searches an answer made (providers/base.py writes it)

# The history a plan reads: successful answers of the last %(k)s batches (their jobs through the batch
# index, their answers through the (job, platform) key): bounded, whatever the table's size.
_RECENT_ANSWERS = sql.SQL("""recent AS (SELECT id FROM analysis_batches ORDER BY started_at DESC LIMIT %(k)s),
                   answers AS (
                       SELECT r.prompt_tracking_id AS prompt, r.platform, r.input_tokens, r.output_tokens,
                              length(r.prompt_text) AS chars, r.execution_time_ms,
                              coalesce((r.metadata->>%(searches)s)::numeric, 0) AS searches
                       FROM recent b JOIN analysis_jobs j ON j.batch_id = b.id
                       JOIN ai_responses r ON r.analysis_job_id = j.id
                       WHERE r.status = 'success' AND r.input_tokens IS NOT NULL AND r.output_tokens IS NOT NULL
                         AND r.platform = ANY(%(pl)s::text[]))""")

# Per platform: the pairs ({}: prompt, platform, chars) joined with their own history.
_PLAN_TEMPLATE = sql.SQL(""",
                   hist AS (SELECT prompt, platform, avg(input_tokens) AS inp, avg(output_tokens) AS outp,
                                   avg(searches) AS searches
                            FROM answers GROUP BY prompt, platform)
               SELECT pairs.platform, count(*) AS calls, count(h.prompt) AS known,
                      coalesce(sum(h.inp), 0) AS known_input, coalesce(sum(h.outp), 0) AS known_output,
                      coalesce(sum(h.searches), 0) AS known_searches,
                      coalesce(sum(pairs.chars) FILTER (WHERE h.prompt IS NULL), 0)::bigint AS unknown_chars
               FROM {}
               LEFT JOIN hist h ON h.prompt = pairs.prompt AND h.platform = pairs.platform
               GROUP BY pairs.platform ORDER BY pairs.platform""")
_PLAN_NEW_BATCH = _CHOSEN_PROMPTS + sql.SQL(", ") + _RECENT_ANSWERS + _PLAN_TEMPLATE.format(
    sql.SQL("""(SELECT l.id AS prompt, x.platform, l.chars
                     FROM limited l CROSS JOIN LATERAL unnest(l.plats) AS x(platform)) pairs"""))
_PLAN_BATCH = sql.SQL("WITH ") + _RECENT_ANSWERS + _PLAN_TEMPLATE.format(
    sql.SQL("""(SELECT j.prompt_tracking_id AS prompt, x.platform, length(p.prompt_text) AS chars
                     FROM analysis_jobs j JOIN prompt_tracking p ON p.id = j.prompt_tracking_id
                     CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
                     LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
                     WHERE j.batch_id = %(b)s AND x.platform = ANY(%(pl)s::text[])
                       AND (r.id IS NULL OR r.status <> 'success')) pairs"""))

_LOCK_JOB = "SELECT 1 FROM analysis_jobs WHERE id = %(job)s FOR UPDATE"
_LOCK_JOBS = "SELECT 1 FROM analysis_jobs WHERE id = ANY(%(jobs)s::uuid[]) ORDER BY id FOR UPDATE"

# One answer.  "IS DISTINCT FROM", not "<>": the partial index ai_responses_unfinished_idx is defined by
# ``status <> 'success'``, and when the statistics saw only successes (a tracker's normal state between
# runs) the planner scans that whole index for a "<>" query instead of looking the id up: each answer
# then costs as much as the day's unfinished rows.  The other predicate cannot use the partial index.
_RECORD_SUCCESS = """
UPDATE ai_responses SET status = 'success', response_text = %s, model_version = %s,
       input_tokens = %s, output_tokens = %s, tokens_used = %s, cost = %s,
       execution_time_ms = %s, metadata = metadata || %s::jsonb, error_message = NULL,
       error_class = NULL, claimed_by = NULL, claim_expires_at = NULL, updated_at = now()
WHERE id = %s AND status IS DISTINCT FROM 'success'
"""


class Store:
    def __init__(self, pool: AsyncConnectionPool[Any], *, round_started_at: datetime | None = None) -> None:
        self.pool = pool
        # The round of the batch a worker is in (``batch_workers``): errors recorded since are final for
        # the round, so no worker retries another's failed pair.  None: every error is to do again.
        self.round_started_at = round_started_at

    def for_round(self, round_started_at: datetime | None) -> Store:
        """The same pool, reading and claiming pairs as of a batch's round."""
        return Store(self.pool, round_started_at=round_started_at)

    async def close(self) -> None:
        await self.pool.close()

    async def fetchone(self, query: Any, params: Any = None) -> Row | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def fetchall(self, query: Any, params: Any = None) -> list[Row]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def add_prompt(self, p: NewPrompt) -> Row:
        row = await self.fetchone(
            """INSERT INTO prompt_tracking (project_id, prompt_text, is_active, platforms)
               VALUES (%s, %s, %s, %s) RETURNING id, project_id, prompt_text, is_active, platforms""",
            (p.project_id, p.prompt_text, p.is_active, p.platforms),
        )
        assert row is not None
        return row

    async def import_prompts(self, prompts: Sequence[NewPrompt]) -> int:
        """All or nothing: one transaction, COPY for speed."""
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            async with cur.copy(
                "COPY prompt_tracking (project_id, prompt_text, is_active, platforms) FROM STDIN"
            ) as copy:
                for p in prompts:
                    await copy.write_row((p.project_id, p.prompt_text, p.is_active, p.platforms))
        return len(prompts)

    async def get_prompt(self, prompt_id: uuid.UUID) -> Row | None:
        return await self.fetchone(
            "SELECT id, project_id, prompt_text, is_active, platforms FROM prompt_tracking WHERE id = %s",
            (prompt_id,),
        )

    async def iter_prompts(
        self, *, project_ids: Sequence[uuid.UUID] = (), include_inactive: bool = False, page_size: int = 500
    ) -> AsyncIterator[Row]:
        """Keyset-paged: at most one page in memory, however many prompts there are."""
        after = uuid.UUID(int=0)
        while True:
            rows = await self.fetchall(
                """SELECT id, project_id, prompt_text, is_active, platforms, created_at
                   FROM prompt_tracking
                   WHERE id > %(after)s AND (%(all)s OR is_active)
                     AND (cardinality(%(projects)s::uuid[]) = 0 OR project_id = ANY(%(projects)s::uuid[]))
                   ORDER BY id LIMIT %(n)s""",
                {"after": after, "all": include_inactive, "projects": list(project_ids), "n": page_size},
            )
            for r in rows:
                yield r
            if len(rows) < page_size:
                return
            after = rows[-1]["id"]

    async def deactivate_prompt(self, prompt_id: uuid.UUID) -> bool:
        row = await self.fetchone(
            """UPDATE prompt_tracking SET is_active = false, updated_at = now()
               WHERE id = %s RETURNING id""",
            (prompt_id,),
        )
        return row is not None

    async def count_active_prompts(self) -> int:
        row = await self.fetchone("SELECT count(*) AS n FROM prompt_tracking WHERE is_active")
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------------------------- batches

    async def _batch(self, query: sql.Composable, params: Any) -> BatchRow | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(BatchRow)) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()

    async def get_batch(self, batch_id: uuid.UUID) -> BatchRow | None:
        return await self._batch(sql.SQL("SELECT {} FROM analysis_batches WHERE id = %s").format(_BATCH),
                                 (batch_id,))

    async def get_batch_by_key(self, key: str) -> BatchRow | None:
        return await self._batch(
            sql.SQL("SELECT {} FROM analysis_batches WHERE idempotency_key = %s").format(_BATCH), (key,))

    async def last_batch(self) -> BatchRow | None:
        return await self._batch(
            sql.SQL("SELECT {} FROM analysis_batches ORDER BY started_at DESC, id DESC LIMIT 1").format(_BATCH),
            None)

    async def create_batch(
        self,
        *,
        key: str,
        trigger: str,
        platforms: Sequence[str],
        project_ids: Sequence[uuid.UUID] = (),
        prompt_ids: Sequence[uuid.UUID] = (),
        limit: int | None = None,
    ) -> tuple[BatchRow, bool]:
        """Create the batch and all its jobs in one transaction; (batch, created).

        An existing batch with the same key is returned untouched (created=False): that is a resume.
        A job asks the prompt's own platforms (null = all) intersected with the batch's; a prompt with
        none left is skipped.
        """
        filters = {"projects": [str(p) for p in project_ids], "prompts": [str(p) for p in prompt_ids],
                   "limit": limit}
        async with self.pool.connection() as conn, conn.transaction():
            batches = conn.cursor(row_factory=class_row(BatchRow))
            await batches.execute(
                sql.SQL("""INSERT INTO analysis_batches (idempotency_key, trigger, status, platforms, filters)
                   VALUES (%s, %s, 'running', %s, %s)
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING {}""").format(_BATCH),
                (key, trigger, list(platforms), _json(filters)),
            )
            batch = await batches.fetchone()
            if batch is None:
                await batches.execute(
                    sql.SQL("SELECT {} FROM analysis_batches WHERE idempotency_key = %s").format(_BATCH), (key,))
                existing = await batches.fetchone()
                assert existing is not None
                return existing, False
            cur = await conn.execute(
                _CHOSEN_PROMPTS + sql.SQL("""
                   INSERT INTO analysis_jobs (batch_id, project_id, prompt_tracking_id, status,
                                              total_platforms, platforms)
                   SELECT %(batch)s, project_id, id, 'pending', cardinality(plats), plats FROM limited
                   ON CONFLICT (batch_id, prompt_tracking_id) DO NOTHING"""),
                {"platforms": list(platforms), "projects": list(project_ids), "prompts": list(prompt_ids),
                 "limit": limit, "batch": batch.id},
            )
            n = cur.rowcount
            await batches.execute(
                sql.SQL("UPDATE analysis_batches SET total_jobs = %s WHERE id = %s RETURNING {}").format(_BATCH),
                (n, batch.id),
            )
            created = await batches.fetchone()
            assert created is not None
            return created, True

    async def set_batch_status(self, batch_id: uuid.UUID, status: BatchStatus, *, finished: bool) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE analysis_batches SET status = %s, updated_at = now(),
                          completed_at = CASE WHEN %s THEN now() END
                   WHERE id = %s""",
                (status, finished, batch_id),
            )

    async def reconcile_jobs(self, batch_id: uuid.UUID) -> None:
        """Recompute every job of the batch from its rows (end of run, after recovery)."""
        async with self.pool.connection() as conn:
            await conn.execute(_RECOMPUTE_BATCH_JOBS, {"b": batch_id})

    async def refresh_batch_counters(self, batch_id: uuid.UUID) -> BatchRow:
        row = await self._batch(
            sql.SQL("""UPDATE analysis_batches b SET total_jobs = s.total, completed_jobs = s.done,
                      failed_jobs = s.failed, updated_at = now()
               FROM (SELECT count(*) AS total,
                            count(*) FILTER (WHERE status = 'completed') AS done,
                            count(*) FILTER (WHERE status = 'failed') AS failed
                     FROM analysis_jobs WHERE batch_id = %(b)s) s
               WHERE b.id = %(b)s RETURNING {}""").format(_BATCH_B),
            {"b": batch_id},
        )
        assert row is not None
        return row

    async def pair_counts(self, batch_id: uuid.UUID, platforms: Sequence[str] = ()) -> dict[str, Row]:
        """Per platform: total pairs, success, error, processing, pending."""
        rows = await self.fetchall(
            """SELECT x.platform,
                      count(*) AS total,
                      count(r.id) FILTER (WHERE r.status = 'success') AS success,
                      count(r.id) FILTER (WHERE r.status = 'error') AS error,
                      count(r.id) FILTER (WHERE r.status = 'processing') AS processing,
                      count(*) FILTER (WHERE r.id IS NULL) AS pending
               FROM analysis_jobs j
               CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
               LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
               WHERE j.batch_id = %(b)s
                 AND (cardinality(%(p)s::text[]) = 0 OR x.platform = ANY(%(p)s::text[]))
               GROUP BY x.platform""",
            {"b": batch_id, "p": list(platforms)},
        )
        return {r["platform"]: r for r in rows}

    # ------------------------------------------------------------------------------- pairs

    async def pending_pairs(
        self, batch_id: uuid.UUID, platform: str, *, after: uuid.UUID | None, limit: int,
        round_started_at: datetime | None = None,
    ) -> list[PairWork]:
        """A page of the batch's pairs on ``platform`` still to do in this round, read without claiming
        them (:data:`_PENDING_PAGE`)."""
        rows = await self.fetchall(_PENDING_PAGE, self._page_params(batch_id, platform, after, limit, round_started_at))
        return [PairWork(r["job"], r["prompt"], r["project"], r["txt"], platform) for r in rows]

    def _page_params(self, batch_id: uuid.UUID, platform: str, after: uuid.UUID | None, limit: int,
                     round_started_at: datetime | None) -> dict[str, Any]:
        return {"b": batch_id, "pl": platform, "after": after or uuid.UUID(int=0), "n": limit,
                "round": round_started_at or self.round_started_at}

    async def pick_pairs(
        self, batch_id: uuid.UUID, platform: str, *, after: uuid.UUID | None, limit: int, owner: str,
        lease_s: float, round_started_at: datetime | None = None,
    ) -> Picked:
        """Claim the next page of the batch's pairs on ``platform`` for ``owner``, in one statement
        (:data:`_PICK`), without counting an attempt: each is counted when its call is about to leave
        (:meth:`count_attempts`), so a pair picked and never called was not paid for."""
        params = {**self._page_params(batch_id, platform, after, limit, round_started_at),
                  "owner": owner, "lease": lease_s, "count": 0}
        rows = await self.fetchall(_PICK, params)
        claimed = [PairWork(r["job"], r["prompt"], r["project"], r["txt"], platform, r["response_id"])
                   for r in rows if r["response_id"] is not None]
        return Picked(claimed, rows[-1]["job"] if rows else None, len(rows) - len(claimed))

    async def pending_jobs(
        self, batch_id: uuid.UUID, platforms: Sequence[str], *, after: uuid.UUID | None, limit: int,
        round_started_at: datetime | None = None,
    ) -> list[list[PairWork]]:
        """A page of jobs with pairs still to do, each as its list of pairs (prompt-at-a-time schedule)."""
        rows = await self.fetchall(
            """WITH page AS (
                   SELECT j.id AS job_id, j.prompt_tracking_id, j.project_id, j.platforms
                   FROM analysis_jobs j
                   WHERE j.batch_id = %(b)s AND j.id > %(after)s
                     AND EXISTS (SELECT 1 FROM unnest(j.platforms) AS x(platform)
                                 LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
                                 WHERE x.platform = ANY(%(pl)s::text[])
                                   AND (r.id IS NULL OR (r.status = 'processing' AND r.claim_expires_at < now())
                                        OR (r.status = 'error' AND (r.error_class = 'interrupted'
                                            OR r.updated_at < %(round)s::timestamptz
                                            OR %(round)s::timestamptz IS NULL))))
                   ORDER BY j.id LIMIT %(n)s)
               SELECT page.job_id, page.prompt_tracking_id, page.project_id, p.prompt_text, x.platform
               FROM page
               JOIN prompt_tracking p ON p.id = page.prompt_tracking_id
               CROSS JOIN LATERAL unnest(page.platforms) AS x(platform)
               LEFT JOIN ai_responses r ON r.analysis_job_id = page.job_id AND r.platform = x.platform
               WHERE x.platform = ANY(%(pl)s::text[])
                 AND (r.id IS NULL OR (r.status = 'processing' AND r.claim_expires_at < now())
                      OR (r.status = 'error' AND (r.error_class = 'interrupted' OR r.updated_at < %(round)s::timestamptz
                                                  OR %(round)s::timestamptz IS NULL)))
               ORDER BY page.job_id, x.platform""",
            {"b": batch_id, "after": after or uuid.UUID(int=0), "pl": list(platforms), "n": limit,
             "round": round_started_at or self.round_started_at},
        )
        jobs: list[list[PairWork]] = []
        for r in rows:
            pair = PairWork(r["job_id"], r["prompt_tracking_id"], r["project_id"], r["prompt_text"], r["platform"])
            if jobs and jobs[-1][0].job_id == pair.job_id:
                jobs[-1].append(pair)
            else:
                jobs.append([pair])
        return jobs

    async def lane_pending(
        self, batch_id: uuid.UUID, platform: str, *, round_started_at: datetime | None = None
    ) -> bool:
        """Whether pairs of the platform are still to do (after a walk claimed nothing: they were passed
        over because another transaction held their job)."""
        rows = await self.fetchall(_PENDING_PAGE, self._page_params(batch_id, platform, None, 1, round_started_at))
        return bool(rows)

    async def claim(
        self, pair: PairWork, *, owner: str, lease_s: float, round_started_at: datetime | None = None
    ) -> uuid.UUID | None:
        """Claim the pair and count its first attempt; None if it succeeded or is held by a live claim."""
        return (await self.claim_many([(pair, lease_s)], owner=owner, round_started_at=round_started_at))[0]

    async def claim_many(
        self, pairs: Sequence[tuple[PairWork, float]], *, owner: str, round_started_at: datetime | None = None
    ) -> list[uuid.UUID | None]:
        """Claim many pairs in one statement and count their first attempt (:data:`_CLAIM`); per pair its
        response id, or None as in :meth:`claim`."""
        rows = await self.fetchall(
            _CLAIM_MANY,
            {"jobs": [p.job_id for p, _ in pairs], "prompts": [p.prompt_id for p, _ in pairs],
             "projects": [p.project_id for p, _ in pairs], "pls": [p.platform for p, _ in pairs],
             "texts": [p.prompt_text for p, _ in pairs], "leases": [lease for _, lease in pairs], "owner": owner,
             "count": 1, "round": round_started_at or self.round_started_at},
        )
        got = {(r["analysis_job_id"], r["platform"]): r["id"] for r in rows}
        return [got.get((p.job_id, p.platform)) for p, _ in pairs]

    async def count_attempts(self, calls: Sequence[tuple[uuid.UUID, float]], *, owner: str) -> list[bool]:
        """Each call is paid: count it before making it, and extend its claim's lease (per call its
        ``lease_s``).  Per call: False if the claim is no longer ours (another process took the pair
        over), and the call must not be made."""
        rows = await self.fetchall(
            """UPDATE ai_responses r SET attempts = r.attempts + 1, updated_at = now(),
                      claim_expires_at = now() + make_interval(secs => t.lease)
               FROM unnest(%(ids)s::uuid[], %(leases)s::float8[]) AS t(id, lease)
               WHERE r.id = t.id AND r.claimed_by = %(owner)s AND r.status = 'processing'
               RETURNING r.id""",
            {"ids": [rid for rid, _ in calls], "leases": [lease for _, lease in calls], "owner": owner},
        )
        ours = {r["id"] for r in rows}
        return [rid in ours for rid, _ in calls]

    async def renew_claims(self, owner: str, *, lease_s: float) -> int:
        """A worker's heartbeat: its claims live at least ``lease_s`` more (a call may wait long for its
        slot or its retry; the claim must outlive the wait while its owner lives, and no longer)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE ai_responses
                   SET claim_expires_at = greatest(claim_expires_at, now() + make_interval(secs => %s))
                   WHERE claimed_by = %s AND status = 'processing'""",
                (lease_s, owner),
            )
            return cur.rowcount

    async def batch_activity(
        self, batch_id: uuid.UUID, platforms: Sequence[str], *, owner: str, round_started_at: datetime | None = None
    ) -> Activity:
        """What is left of the batch once a worker's pass ends: pairs still to do on ``platforms`` (a
        dead worker's expired claims, interrupted pairs), and calls other live claims are making."""
        row = await self.fetchone(
            """SELECT
                 (SELECT count(*) FROM (
                    SELECT 1 FROM analysis_jobs j CROSS JOIN LATERAL unnest(j.platforms) AS x(platform)
                    LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = x.platform
                    WHERE j.batch_id = %(b)s AND x.platform = ANY(%(pl)s::text[])
                      AND (r.id IS NULL OR (r.status = 'processing' AND r.claim_expires_at < now())
                           OR (r.status = 'error' AND (r.error_class = 'interrupted'
                               OR r.updated_at < %(round)s::timestamptz OR %(round)s::timestamptz IS NULL)))
                    LIMIT 1000) t) AS todo,
                 count(r.id) AS held,
                 min(r.claim_expires_at) AS next_expiry
               FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id
               WHERE r.status = 'processing' AND j.batch_id = %(b)s AND r.claimed_by IS DISTINCT FROM %(owner)s""",
            {"b": batch_id, "pl": list(platforms), "owner": owner, "round": round_started_at or self.round_started_at},
        )
        assert row is not None
        return Activity(int(row["todo"]), int(row["held"]), row["next_expiry"])

    async def unclaim(self, response_id: uuid.UUID, *, owner: str) -> None:
        """A counted attempt that was never made (the run or the platform stopped first): uncount it and
        end the pair ``interrupted``, claimable again at once."""
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE ai_responses SET attempts = greatest(attempts - 1, 0), claimed_by = NULL,
                          claim_expires_at = NULL, status = 'error', error_class = 'interrupted',
                          error_message = coalesce(error_message, 'not called: the run stopped first'),
                          updated_at = now()
                   WHERE id = %s AND claimed_by = %s AND status = 'processing'""",
                (response_id, owner),
            )

    async def record_success(self, rec: SuccessRecord) -> None:
        await self.record_successes([rec])

    async def record_successes(self, recs: Sequence[SuccessRecord]) -> None:
        """Answers, their citations and their jobs' counters in one transaction, one round trip.

        Job rows are locked first, in id order (no deadlock between writers), so the counters
        recomputed at the end see every earlier commit on those jobs.
        """
        if not recs:
            return
        jobs = sorted({r.job_id for r in recs})
        cites = [(r.response_id, c) for r in recs for c in r.citations]
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(_LOCK_JOBS, {"jobs": jobs})
            async with conn.cursor() as cur:
                await cur.executemany(
                    _RECORD_SUCCESS,
                    [(_text(r.response_text), _text(r.model_version), r.input_tokens, r.output_tokens,
                      r.total_tokens, r.cost, r.execution_time_ms, _json(r.metadata), r.response_id) for r in recs],
                )
            if cites:
                await conn.execute(
                    """INSERT INTO ai_response_citations (ai_response_id, position, url, domain, title, cited, site,
                                                          metadata)
                       SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::text[], %s::text[], %s::bool[],
                                            %s::text[], %s::jsonb[])
                       ON CONFLICT (ai_response_id, url) DO NOTHING""",
                    ([rid for rid, _ in cites], [c.position for _, c in cites], [_text(c.url) for _, c in cites],
                     [_text(c.domain) for _, c in cites], [_text(c.title) for _, c in cites],
                     [c.cited for _, c in cites], [_text(c.site) for _, c in cites],
                     [_json(c.metadata or {}) for _, c in cites]),
                )
            await conn.execute(_RECOMPUTE_JOBS, {"jobs": jobs})

    async def record_spooled(self, rec: SuccessRecord) -> bool:
        """Replay a spooled answer: only into a pair that has not succeeded since."""
        row = await self.fetchone(
            "SELECT status FROM ai_responses WHERE id = %s", (rec.response_id,)
        )
        if row is None or row["status"] == "success":
            return False
        await self.record_success(rec)
        return True

    async def record_error(
        self,
        response_id: uuid.UUID,
        job_id: uuid.UUID,
        *,
        error_class: str,
        message: str,
        metadata: dict[str, Any],
    ) -> None:
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(_LOCK_JOB, {"job": job_id})
            await conn.execute(
                """UPDATE ai_responses SET status = 'error', error_class = %s, error_message = %s,
                          metadata = metadata || %s::jsonb, claimed_by = NULL, claim_expires_at = NULL,
                          updated_at = now()
                   WHERE id = %s""",
                (error_class, _text(message), _json(metadata), response_id),
            )
            await conn.execute(_RECOMPUTE_JOB, {"job": job_id})

    async def release_claims(self, owner: str) -> int:
        """On a clean stop: pairs this process claimed and did not finish end ``interrupted``.

        No row stays ``processing`` (readers take that as "a call is under way"); an ``interrupted``
        pair is claimable again at once and does not count as a failed platform of its job.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """WITH r AS (
                       UPDATE ai_responses SET status = 'error', error_class = 'interrupted',
                              error_message = 'interrupted before an answer arrived', claimed_by = NULL,
                              claim_expires_at = NULL, updated_at = now()
                       WHERE claimed_by = %(owner)s AND status = 'processing'
                       RETURNING analysis_job_id)
                   SELECT count(*) AS n FROM r""",
                {"owner": owner},
            )
            row = await cur.fetchone()
            return int(row["n"]) if row else 0

    async def fail_remaining(
        self, batch_id: uuid.UUID, platform: str, *, error_class: str, message: str
    ) -> int:
        """End every unfinished pair of one platform as an error, set-based (circuit breaker open)."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """WITH todo AS (
                       SELECT j.id AS job_id, j.prompt_tracking_id, j.project_id, p.prompt_text
                       FROM analysis_jobs j
                       JOIN prompt_tracking p ON p.id = j.prompt_tracking_id
                       LEFT JOIN ai_responses r ON r.analysis_job_id = j.id AND r.platform = %(pl)s
                       WHERE j.batch_id = %(b)s AND %(pl)s = ANY(j.platforms)
                         AND (r.id IS NULL OR (r.status = 'error' AND r.error_class = 'interrupted')
                              OR (r.status = 'processing'
                                  AND (r.claimed_by IS NULL OR r.claim_expires_at < now()))))
                   INSERT INTO ai_responses (analysis_job_id, prompt_tracking_id, project_id, platform,
                                             prompt_text, status, error_class, error_message)
                   SELECT job_id, prompt_tracking_id, project_id, %(pl)s, prompt_text, 'error', %(cls)s, %(msg)s
                   FROM todo
                   ON CONFLICT (analysis_job_id, platform) DO UPDATE SET
                       status = 'error', error_class = EXCLUDED.error_class,
                       error_message = EXCLUDED.error_message, claimed_by = NULL, claim_expires_at = NULL,
                       updated_at = now()
                   WHERE (ai_responses.status = 'error' AND ai_responses.error_class = 'interrupted')
                      OR (ai_responses.status = 'processing'
                          AND (ai_responses.claimed_by IS NULL OR ai_responses.claim_expires_at < now()))""",
                {"b": batch_id, "pl": platform, "cls": error_class, "msg": message},
            )
            n = cur.rowcount
            await conn.execute(_RECOMPUTE_BATCH_JOBS, {"b": batch_id})
            return n

    # ------------------------------------------------------------------------------- cost

    async def _rows(self, row_type: type[Any], query: sql.Composable, params: Any) -> list[Any]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=class_row(row_type)) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def plan_new_batch(
        self, *, platforms: Sequence[str], project_ids: Sequence[uuid.UUID] = (),
        prompt_ids: Sequence[uuid.UUID] = (), limit: int | None = None, history_batches: int,
    ) -> list[PlanRow]:
        """What :meth:`create_batch` would plan, per platform, with its pairs' history; writes nothing."""
        return await self._rows(PlanRow, _PLAN_NEW_BATCH, {
            "platforms": list(platforms), "projects": list(project_ids), "prompts": list(prompt_ids),
            "limit": limit, "pl": list(platforms), "k": history_batches, "searches": SEARCHES_KEY})

    async def plan_batch(
        self, batch_id: uuid.UUID, *, platforms: Sequence[str], history_batches: int
    ) -> list[PlanRow]:
        """The pairs of an existing batch that have not succeeded, per platform, with their history."""
        return await self._rows(PlanRow, _PLAN_BATCH, {"b": batch_id, "pl": list(platforms), "k": history_batches,
                                                       "searches": SEARCHES_KEY})

    async def platform_history(self, platforms: Sequence[str], *, history_batches: int) -> list[PlatformHistory]:
        """Per platform, what its successful answers of the last ``history_batches`` batches cost."""
        return await self._rows(PlatformHistory, sql.SQL("WITH ") + _RECENT_ANSWERS + sql.SQL("""
               SELECT platform, count(*)::int AS answers, avg(input_tokens - chars / 4.0) AS input_overhead,
                      avg(output_tokens) AS output_tokens, avg(searches) AS searches,
                      avg(execution_time_ms) AS latency_ms
               FROM answers GROUP BY platform ORDER BY platform"""),
            {"pl": list(platforms), "k": history_batches, "searches": SEARCHES_KEY})

    async def batch_spend(self, batch_id: uuid.UUID) -> list[PlatformSpend]:
        """What the batch's answers cost so far, per platform, over all its runs (the budget's ``spent``)."""
        return await self._rows(PlatformSpend, sql.SQL("""
               SELECT r.platform, coalesce(sum(r.cost), 0) AS cost
               FROM analysis_jobs j JOIN ai_responses r ON r.analysis_job_id = j.id
               WHERE j.batch_id = %(b)s GROUP BY r.platform ORDER BY r.platform"""), {"b": batch_id})

    async def budget_exhausted_pairs(self, batch_id: uuid.UUID) -> int:
        """Pairs a budget left uncalled: a finished batch with some is resumed (under a higher budget)."""
        row = await self.fetchone(
            """SELECT count(*) AS n FROM analysis_jobs j JOIN ai_responses r ON r.analysis_job_id = j.id
               WHERE j.batch_id = %s AND r.status = 'error' AND r.error_class = %s""",
            (batch_id, ErrorClass.BUDGET_EXHAUSTED),
        )
        return int(row["n"]) if row else 0
    # ------------------------------------------------------------------------------- limits

    async def save_batch_limits(self, batch_id: uuid.UUID, limits: dict[str, Any]) -> None:
        """The limits in force by platform when the batch last ran (merged over earlier runs' platforms)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE analysis_batches SET limits = limits || %s::jsonb, updated_at = now() WHERE id = %s",
                (json.dumps(limits), batch_id),
            )

    async def batch_limits(self, batch_id: uuid.UUID) -> dict[str, Any]:
        row = await self.fetchone("SELECT limits FROM analysis_batches WHERE id = %s", (batch_id,))
        return dict(row["limits"] or {}) if row else {}

    async def tables_without_rls(self) -> list[str]:
        """Tables of the schemas in the search path with row level security off (Supabase exposes them)."""
        rows = await self.fetchall(
            """SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind = ANY(%s::"char"[]) AND NOT c.relrowsecurity
                 AND n.nspname = ANY(current_schemas(false))
               ORDER BY 1""", (_TABLE_KINDS,))
        return [str(r["name"]) for r in rows]

    async def reserve_daily(self, platform: str, day: date, want: int, rpd: int) -> int:
        """Take up to ``want`` of ``platform``'s requests of ``day`` without passing ``rpd``; returns how
        many were granted (0: the day's quota is spent).  Concurrent callers serialise on the row lock."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO platform_daily_usage (platform, day) VALUES (%s, %s)
                   ON CONFLICT (platform, day) DO NOTHING""", (platform, day))
            cur = await conn.execute(
                "SELECT requests FROM platform_daily_usage WHERE platform = %s AND day = %s FOR UPDATE",
                (platform, day))
            row = await cur.fetchone()
            used = int(row["requests"]) if row else 0
            granted = max(0, min(want, rpd - used))
            if granted:
                await conn.execute(
                    """UPDATE platform_daily_usage SET requests = requests + %s, updated_at = now()
                       WHERE platform = %s AND day = %s""", (granted, platform, day))
            return granted

    async def give_back_daily(self, platform: str, day: date, n: int) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE platform_daily_usage SET requests = GREATEST(0, requests - %s), updated_at = now()
                   WHERE platform = %s AND day = %s""",
                (n, platform, day),
            )

    async def daily_usage(self, platform: str, day: date) -> int:
        row = await self.fetchone(
            "SELECT requests FROM platform_daily_usage WHERE platform = %s AND day = %s", (platform, day))
        return int(row["requests"]) if row else 0

    # ------------------------------------------------------------------------------- reports

    async def platform_stats(self, batch_id: uuid.UUID) -> list[Row]:
        return await self.fetchall(
            """SELECT r.platform,
                      count(*) FILTER (WHERE r.status = 'success') AS success,
                      count(*) FILTER (WHERE r.status = 'error') AS error,
                      count(*) FILTER (WHERE r.status = 'processing') AS processing,
                      coalesce(sum(r.tokens_used) FILTER (WHERE r.status = 'success'), 0) AS tokens,
                      coalesce(sum(r.cost) FILTER (WHERE r.status = 'success'), 0) AS cost,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY r.execution_time_ms)
                          FILTER (WHERE r.status = 'success') AS p50_ms,
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY r.execution_time_ms)
                          FILTER (WHERE r.status = 'success') AS p95_ms,
                      coalesce(sum(r.attempts), 0) AS attempts
               FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id
               WHERE j.batch_id = %s GROUP BY r.platform ORDER BY r.platform""",
            (batch_id,),
        )

    async def top_errors(self, batch_id: uuid.UUID, limit: int = 3) -> list[Row]:
        return await self.fetchall(
            """SELECT r.platform, r.error_class, left(r.error_message, 160) AS message, count(*) AS n
               FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id
               WHERE j.batch_id = %s AND r.status = 'error'
               GROUP BY 1, 2, 3 ORDER BY r.platform, n DESC""",
            (batch_id,),
        )

    async def responses_for_job(self, job_id: uuid.UUID) -> list[Row]:
        return await self.fetchall(
            """SELECT r.*, coalesce(
                   (SELECT json_agg(json_build_object('position', c.position, 'url', c.url, 'domain', c.domain,
                                                      'site', c.site, 'title', c.title, 'cited', c.cited,
                                                      'metadata', c.metadata)
                                    ORDER BY c.position)
                    FROM ai_response_citations c WHERE c.ai_response_id = r.id), '[]') AS citations
               FROM ai_responses r WHERE r.analysis_job_id = %s ORDER BY r.platform""",
            (job_id,),
        )

    async def job_for_prompt(self, batch_id: uuid.UUID, prompt_id: uuid.UUID) -> Row | None:
        return await self.fetchone(
            "SELECT * FROM analysis_jobs WHERE batch_id = %s AND prompt_tracking_id = %s", (batch_id, prompt_id)
        )
