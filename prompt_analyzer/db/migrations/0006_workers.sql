-- Several worker processes, on several machines, on one batch: who is working on it, in rows.
--
-- Everything here holds through a transaction pooler (Supabase's port 6543, PgBouncer in transaction
-- mode): a worker's liveness is a lease in its row, renewed by a statement; the coordinator role is a
-- row; the end of the batch is decided under the batch row's lock inside one transaction.  No session
-- state (advisory locks, prepared statements, LISTEN) is needed for correctness.

CREATE TABLE IF NOT EXISTS batch_workers (
    batch_id uuid NOT NULL REFERENCES analysis_batches (id) ON DELETE CASCADE,
    worker text NOT NULL,                         -- host:pid:random, the value of ai_responses.claimed_by
    role text NOT NULL DEFAULT 'worker',          -- 'coordinator' (an `analyze run`) or 'worker'
    state text NOT NULL DEFAULT 'running',        -- running, done, stopped, dead
    host text,
    pid integer,
    joined_at timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL,        -- renewed by the worker's heartbeat while it lives
    left_at timestamptz,
    calls integer NOT NULL DEFAULT 0,             -- provider calls this worker made (reported when it leaves)
    PRIMARY KEY (batch_id, worker)
);

-- The round a batch is in: set when the first live worker joins it.  An error recorded during the
-- round is final for the round (no other worker retries it); errors of earlier rounds are retried.
ALTER TABLE analysis_batches ADD COLUMN IF NOT EXISTS round_started_at timestamptz;
-- The worker that left last and is finishing the batch (a worker joining meanwhile clears it).
ALTER TABLE analysis_batches ADD COLUMN IF NOT EXISTS finishing_worker text;

-- A worker's heartbeat renews the leases of its claims: one index lookup per heartbeat.
CREATE INDEX IF NOT EXISTS ai_responses_claimed_by_idx ON ai_responses (claimed_by)
    WHERE status = 'processing';

ALTER TABLE batch_workers ENABLE ROW LEVEL SECURITY;
