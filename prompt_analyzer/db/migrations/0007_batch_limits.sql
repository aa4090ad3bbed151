-- The rate limits in force when a batch last ran, by platform (configured, stated by the provider or
-- learned; engine/limits.py), for `analyze status`.
ALTER TABLE analysis_batches ADD COLUMN IF NOT EXISTS limits jsonb NOT NULL DEFAULT '{}';

-- Requests per day (`rpd`) spent by platform and UTC day, over every run and worker: reserved in
-- chunks before calls leave, the unsent part given back at a run's end.
CREATE TABLE IF NOT EXISTS platform_daily_usage (
    platform text NOT NULL,
    day date NOT NULL,
    requests integer NOT NULL DEFAULT 0 CHECK (requests >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, day)
);
ALTER TABLE platform_daily_usage ENABLE ROW LEVEL SECURITY;
