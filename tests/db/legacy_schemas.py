"""The original service's tables as a production database may hold them (shared/reference/original-schema.md).

Built with plain SQL, the way the TypeScript service's Supabase project would have them: every column but
``id`` nullable, ``number`` columns as ``numeric``, timestamps without time zone, no foreign keys, no
``batch_id`` / ``analysis_job_id``, no ``analysis_batches`` and no citations table, and rows with NULLs.
"""

from __future__ import annotations

import uuid

PROJECT = uuid.UUID("11111111-1111-1111-1111-111111111111")

# Legacy prompts that are active with a text and a project: an engine batch over all active prompts picks them.
ACTIVE_LEGACY_PROMPTS = {uuid.UUID("aaaaaaaa-0000-0000-0000-000000000001")}

# The architecture notes' model as written: no defaults at all (not even on id), nothing NOT NULL but id.
DOCUMENTED_DDL = """
CREATE TABLE prompt_tracking (
    id uuid PRIMARY KEY,
    project_id uuid,
    prompt_text text,
    is_active boolean
);
CREATE TABLE analysis_jobs (
    id uuid PRIMARY KEY,
    project_id uuid,
    prompt_tracking_id uuid,
    status text,
    total_platforms numeric,
    completed_platforms numeric,
    failed_platforms numeric,
    started_at timestamp,
    completed_at timestamp,
    created_by uuid
);
CREATE TABLE ai_responses (
    id uuid PRIMARY KEY,
    prompt_tracking_id uuid,
    project_id uuid,
    platform text,
    model_version text,
    prompt_text text,
    response_text text,
    status text,
    tokens_used numeric,
    cost numeric,
    execution_time_ms numeric,
    metadata jsonb,
    error_message text
);
"""

DOCUMENTED_ROWS = """
INSERT INTO prompt_tracking (id, project_id, prompt_text, is_active) VALUES
    ('aaaaaaaa-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'best crm for startups', true),
    ('aaaaaaaa-0000-0000-0000-000000000002', NULL, 'a prompt without a project', false),
    ('aaaaaaaa-0000-0000-0000-000000000003', '11111111-1111-1111-1111-111111111111', NULL, NULL),
    ('aaaaaaaa-0000-0000-0000-000000000004', NULL, NULL, NULL);
INSERT INTO analysis_jobs (id, project_id, prompt_tracking_id, status, total_platforms, completed_platforms,
                           failed_platforms, started_at, completed_at, created_by) VALUES
    ('bbbbbbbb-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111',
     'aaaaaaaa-0000-0000-0000-000000000001', 'completed', 4, 3, 1,
     '2025-03-01 02:00:00.123456', '2025-03-01 02:01:07.5', NULL),
    ('bbbbbbbb-0000-0000-0000-000000000002', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('bbbbbbbb-0000-0000-0000-000000000003', '11111111-1111-1111-1111-111111111111',
     'cccccccc-0000-0000-0000-00000000dead', 'failed', 2.5, 0, 2, '2025-03-02 02:00:00', NULL,
     'dddddddd-0000-0000-0000-000000000001');
INSERT INTO ai_responses (id, prompt_tracking_id, project_id, platform, model_version, prompt_text, response_text,
                          status, tokens_used, cost, execution_time_ms, metadata, error_message) VALUES
    ('eeeeeeee-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-000000000001',
     '11111111-1111-1111-1111-111111111111', 'openai', 'gpt-4o-2024-08-06', 'best crm for startups',
     'HubSpot, Pipedrive and Attio.', 'success', 1234, 0.012345678901, 2345.5,
     '{"citations": ["https://a.example/"], "nested": {"x": null}}', NULL),
    ('eeeeeeee-0000-0000-0000-000000000002', 'aaaaaaaa-0000-0000-0000-000000000001',
     '11111111-1111-1111-1111-111111111111', 'claude', NULL, 'best crm for startups', NULL,
     'error', NULL, NULL, NULL, NULL, 'rate limited'),
    ('eeeeeeee-0000-0000-0000-000000000003', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    -- the same (prompt, platform) twice: the original service wrote a row per attempt
    ('eeeeeeee-0000-0000-0000-000000000004', 'aaaaaaaa-0000-0000-0000-000000000001',
     '11111111-1111-1111-1111-111111111111', 'openai', NULL, 'best crm for startups', NULL,
     'processing', NULL, NULL, NULL, '{}', NULL);
"""

# The same plus what a real project grows: its owner's own columns (with values), defaults on id and
# metadata, created_at, and row level security already on for prompt_tracking with a policy.
EXTRA_DDL = """
ALTER TABLE prompt_tracking ADD COLUMN category text;
ALTER TABLE prompt_tracking ADD COLUMN created_at timestamptz DEFAULT now();
ALTER TABLE analysis_jobs ADD COLUMN inngest_run_id text;
ALTER TABLE ai_responses ADD COLUMN sentiment_score numeric;
ALTER TABLE ai_responses ADD COLUMN created_at timestamp DEFAULT now();
ALTER TABLE prompt_tracking ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE analysis_jobs ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE ai_responses ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE ai_responses ALTER COLUMN metadata SET DEFAULT '{}';
ALTER TABLE prompt_tracking ENABLE ROW LEVEL SECURITY;
CREATE POLICY legacy_read ON prompt_tracking FOR SELECT USING (true);
"""

EXTRA_ROWS = """
UPDATE prompt_tracking SET category = 'crm' WHERE id = 'aaaaaaaa-0000-0000-0000-000000000001';
UPDATE prompt_tracking SET created_at = '2024-12-31 23:59:59.999+00' WHERE id = 'aaaaaaaa-0000-0000-0000-000000000002';
UPDATE analysis_jobs SET inngest_run_id = '01HZX3' WHERE id = 'bbbbbbbb-0000-0000-0000-000000000001';
UPDATE ai_responses SET sentiment_score = 0.875 WHERE id = 'eeeeeeee-0000-0000-0000-000000000001';
UPDATE ai_responses SET sentiment_score = -0.1, created_at = NULL WHERE id = 'eeeeeeee-0000-0000-0000-000000000002';
"""

SHAPES: dict[str, str] = {
    "documented": DOCUMENTED_DDL + DOCUMENTED_ROWS,
    "extra_columns": DOCUMENTED_DDL + EXTRA_DDL + DOCUMENTED_ROWS + EXTRA_ROWS,
    "empty": "",
}

# Tables whose rows become hidden from roles without a policy when the migrations turn row level security on.
NEWLY_RLS: dict[str, set[str]] = {
    "documented": {"prompt_tracking", "analysis_jobs", "ai_responses"},
    "extra_columns": {"analysis_jobs", "ai_responses"},  # prompt_tracking had it on already
    "empty": set(),
}
