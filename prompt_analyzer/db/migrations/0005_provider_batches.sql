-- Batch mode: one row per batch submitted to a provider's batch API (OpenAI Batch, Anthropic Message
-- Batches, Gemini Batch Mode).  The row is written *before* the submit (state 'submitting'), so a crash
-- between the provider accepting the batch and us recording its id is found again on resume by the
-- row's id, which the submit carried (OpenAI metadata, Gemini display name, Anthropic custom_id prefix).
-- The pairs of a provider batch are its ai_responses rows, `processing` with claimed_by =
-- 'provider-batch:<id>' until their result is written; each request's custom_id is the row's id.
CREATE TABLE IF NOT EXISTS provider_batches (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    analysis_batch_id uuid NOT NULL REFERENCES analysis_batches (id) ON DELETE CASCADE,
    platform text NOT NULL,
    provider text NOT NULL,                      -- openai | anthropic | gemini
    provider_batch_id text,                      -- the provider's id; null until the submit answered
    state text NOT NULL,                         -- statuses.ProviderBatchState
    provider_state text,                         -- the provider's own word (validating, in_progress, ...)
    request_count integer NOT NULL DEFAULT 0,
    completed_count integer NOT NULL DEFAULT 0,  -- as the provider counts them while it works
    failed_count integer NOT NULL DEFAULT 0,
    round integer NOT NULL DEFAULT 1,            -- 2, 3, ...: retries of failed requests
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    submitted_at timestamptz,
    expires_at timestamptz,
    ended_at timestamptz,
    collected_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS provider_batches_provider_id_idx
    ON provider_batches (provider, provider_batch_id) WHERE provider_batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS provider_batches_open_idx ON provider_batches (analysis_batch_id)
    WHERE state IN ('submitting', 'in_progress', 'ended');
ALTER TABLE provider_batches ENABLE ROW LEVEL SECURITY;
