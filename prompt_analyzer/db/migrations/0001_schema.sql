-- The contract's tables.  Written to apply both to an empty database and to one that already holds
-- the original service's prompt_tracking / analysis_jobs / ai_responses: every table and column is
-- created only if missing, and no existing row is changed.

-- gen_random_uuid() is built in from PostgreSQL 13, the oldest version supported.

CREATE TABLE IF NOT EXISTS prompt_tracking (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    prompt_text text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    platforms text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE prompt_tracking ADD COLUMN IF NOT EXISTS is_active boolean NOT NULL DEFAULT true;
ALTER TABLE prompt_tracking ADD COLUMN IF NOT EXISTS platforms text[];
ALTER TABLE prompt_tracking ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE prompt_tracking ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE IF NOT EXISTS analysis_batches (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text UNIQUE,
    trigger text NOT NULL DEFAULT 'manual',
    status text NOT NULL DEFAULT 'running',
    total_jobs integer NOT NULL DEFAULT 0,
    completed_jobs integer NOT NULL DEFAULT 0,
    failed_jobs integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    -- ours: what the batch was asked to do, so a resume or rerun does the same thing
    platforms text[],
    filters jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS analysis_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    batch_id uuid REFERENCES analysis_batches (id),
    project_id uuid NOT NULL,
    prompt_tracking_id uuid NOT NULL REFERENCES prompt_tracking (id),
    status text NOT NULL DEFAULT 'pending',
    total_platforms integer NOT NULL DEFAULT 0,
    completed_platforms integer NOT NULL DEFAULT 0,
    failed_platforms integer NOT NULL DEFAULT 0,
    started_at timestamptz,
    completed_at timestamptz,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS batch_id uuid REFERENCES analysis_batches (id);
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS total_platforms integer NOT NULL DEFAULT 0;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS completed_platforms integer NOT NULL DEFAULT 0;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS failed_platforms integer NOT NULL DEFAULT 0;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS started_at timestamptz;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS completed_at timestamptz;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS created_by uuid;
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
-- ours: the platforms this job asks (fixed at creation so resumes ask the same set)
ALTER TABLE analysis_jobs ADD COLUMN IF NOT EXISTS platforms text[];

CREATE TABLE IF NOT EXISTS ai_responses (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    analysis_job_id uuid REFERENCES analysis_jobs (id) ON DELETE CASCADE,
    prompt_tracking_id uuid NOT NULL,
    project_id uuid NOT NULL,
    platform text NOT NULL,
    model_version text,
    prompt_text text NOT NULL,
    response_text text,
    status text NOT NULL DEFAULT 'processing',
    tokens_used integer,
    input_tokens integer,
    output_tokens integer,
    cost numeric,
    execution_time_ms integer,
    attempts integer NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS model_version text;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS response_text text;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS tokens_used integer;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS input_tokens integer;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS output_tokens integer;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS cost numeric;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS execution_time_ms integer;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS error_message text;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
-- ours: the claim of the process calling this pair, and the class of the last error
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS claimed_by text;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS claim_expires_at timestamptz;
ALTER TABLE ai_responses ADD COLUMN IF NOT EXISTS error_class text;

CREATE TABLE IF NOT EXISTS ai_response_citations (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ai_response_id uuid NOT NULL REFERENCES ai_responses (id) ON DELETE CASCADE,
    position integer NOT NULL,
    url text NOT NULL,
    domain text NOT NULL,
    title text,
    cited boolean NOT NULL,
    UNIQUE (ai_response_id, url)
);

-- Unique constraints the engine's idempotency rests on.  Added only where missing; if legacy rows
-- violate one, the migration stops with a message naming the duplicates and changes nothing.
DO $$
DECLARE
    dup bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'analysis_jobs'::regclass AND conname = 'analysis_jobs_batch_prompt_key') THEN
        SELECT count(*) INTO dup FROM (
            SELECT 1 FROM analysis_jobs WHERE batch_id IS NOT NULL
            GROUP BY batch_id, prompt_tracking_id HAVING count(*) > 1) d;
        IF dup > 0 THEN
            RAISE EXCEPTION 'analysis_jobs holds % duplicate (batch_id, prompt_tracking_id) pairs; '
                'remove them before migrating', dup;
        END IF;
        ALTER TABLE analysis_jobs
            ADD CONSTRAINT analysis_jobs_batch_prompt_key UNIQUE (batch_id, prompt_tracking_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'ai_responses'::regclass AND conname = 'ai_responses_job_platform_key') THEN
        SELECT count(*) INTO dup FROM (
            SELECT 1 FROM ai_responses WHERE analysis_job_id IS NOT NULL
            GROUP BY analysis_job_id, platform HAVING count(*) > 1) d;
        IF dup > 0 THEN
            RAISE EXCEPTION 'ai_responses holds % duplicate (analysis_job_id, platform) pairs; '
                'remove them before migrating', dup;
        END IF;
        ALTER TABLE ai_responses
            ADD CONSTRAINT ai_responses_job_platform_key UNIQUE (analysis_job_id, platform);
    END IF;
END $$;

-- Indexes for the engine's queries: keyset paging of active prompts, a batch's jobs, unfinished pairs.
CREATE INDEX IF NOT EXISTS prompt_tracking_active_id_idx ON prompt_tracking (id) WHERE is_active;
CREATE INDEX IF NOT EXISTS prompt_tracking_project_idx ON prompt_tracking (project_id, id);
CREATE INDEX IF NOT EXISTS analysis_jobs_batch_id_idx ON analysis_jobs (batch_id, id);
CREATE INDEX IF NOT EXISTS ai_responses_unfinished_idx ON ai_responses (analysis_job_id, platform)
    WHERE status <> 'success';
CREATE INDEX IF NOT EXISTS ai_response_citations_domain_idx ON ai_response_citations (domain);
CREATE INDEX IF NOT EXISTS analysis_batches_started_idx ON analysis_batches (started_at DESC);

-- Supabase exposes schema public to its anon key: RLS on, no policies, so only the owner / service
-- role (which bypass RLS) read or write.
ALTER TABLE prompt_tracking ENABLE ROW LEVEL SECURITY;
ALTER TABLE analysis_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE analysis_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_responses ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_response_citations ENABLE ROW LEVEL SECURITY;
