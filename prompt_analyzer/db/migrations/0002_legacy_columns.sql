-- @run-first
-- The columns the engine needs, added to the original service's prompt_tracking / analysis_jobs /
-- ai_responses where a legacy table lacks them (issue 10).
--
-- Why it exists.  0001 creates each table only if missing and then adds only some columns with ADD COLUMN
-- IF NOT EXISTS; a table of the original service (shared/reference/original-schema.md: no
-- ai_responses.analysis_job_id, and nothing guaranteed beyond the documented columns) keeps its own
-- columns, so 0001's unique constraints and indexes then name columns that are not there and 0001 fails
-- (UndefinedColumn: analysis_job_id).  0001 is applied in existing databases and its content is its
-- identity, so it stays as it is; this file supplies what it assumes.
--
-- Why "@run-first".  The line above makes migrate.py run this file before every other pending migration,
-- in the same transaction as the first of them: on a legacy database it runs before 0001 (which then
-- succeeds), and if 0001 still fails (duplicate legacy pairs) this file rolls back with it, so a failed
-- migration changes nothing.  It is written to be correct at any position: every statement checks that
-- its table exists and that its column is missing, so on an empty database it does nothing (0001 then
-- creates complete tables) and on a database that already applied 0001 it does nothing either; it is
-- recorded as version 2 like any migration.  (A file numbered 0000 would run first by number alone, but
-- would be recorded after 0001 on every existing database just the same; the explicit marker says what
-- is going on.)
--
-- What it changes, and what it leaves alone.
-- * Columns are added nullable and without a default: existing rows get NULL in them and nothing else
--   changes.  NOT NULL is not imposed on a legacy column (legacy rows may hold NULLs there); the engine
--   fills these columns in every row it writes.  A legacy column keeps its type: numeric token counts and
--   latencies and timestamps without time zone work with the engine's statements as they are.
-- * A foreign key is declared only on a column added here (all NULL, so nothing to validate), and only
--   when the referenced table has a unique index on id; legacy columns get none (legacy rows may point
--   to rows that are gone, and a new key would change what the application that deletes rows may do).
-- * Defaults are set on columns the engine relies on being defaulted, only where the column has none:
--   id (the engine inserts without an id: gen_random_uuid()) and ai_responses.metadata ('{}': the engine
--   writes `metadata = metadata || $1::jsonb`, and NULL || x is NULL, which would drop what it records).
--   A default changes no existing row.  Legacy rows whose metadata is NULL stay NULL: the engine never
--   updates a legacy row (they have no analysis_job_id, and every engine statement reaches ai_responses
--   through its batch's jobs), so they do not matter to it.
-- * Nothing is changed on tables of the engine's own (analysis_batches, ai_response_citations): 0001
--   creates them.

DO $$
DECLARE
    w record;
    t text;
    referenceable boolean;
BEGIN
    FOR w IN SELECT * FROM (VALUES
        -- table, column, type, referenced table, referential action: 0001's declaration of each column
        -- that 0001 itself adds only in CREATE TABLE and that its constraints, its indexes or the
        -- engine's statements use
        ('prompt_tracking', 'project_id', 'uuid', NULL, NULL),
        ('prompt_tracking', 'prompt_text', 'text', NULL, NULL),
        ('analysis_jobs', 'project_id', 'uuid', NULL, NULL),
        ('analysis_jobs', 'prompt_tracking_id', 'uuid', 'prompt_tracking', ''),
        ('analysis_jobs', 'status', 'text', NULL, NULL),
        ('ai_responses', 'analysis_job_id', 'uuid', 'analysis_jobs', ' ON DELETE CASCADE'),
        ('ai_responses', 'prompt_tracking_id', 'uuid', NULL, NULL),
        ('ai_responses', 'project_id', 'uuid', NULL, NULL),
        ('ai_responses', 'platform', 'text', NULL, NULL),
        ('ai_responses', 'prompt_text', 'text', NULL, NULL),
        ('ai_responses', 'status', 'text', NULL, NULL)
    ) AS v (tab, col, typ, ref, action)
    LOOP
        CONTINUE WHEN to_regclass(w.tab) IS NULL;
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_attribute
                              WHERE attrelid = to_regclass(w.tab) AND attname = w.col AND NOT attisdropped);
        referenceable := w.ref IS NOT NULL AND to_regclass(w.ref) IS NOT NULL AND EXISTS (
            SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = to_regclass(w.ref) AND i.indisunique AND i.indnkeyatts = 1
              AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'id');
        IF referenceable THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN %I %s REFERENCES %I (id)%s',
                           w.tab, w.col, w.typ, w.ref, w.action);
        ELSE
            EXECUTE format('ALTER TABLE %I ADD COLUMN %I %s', w.tab, w.col, w.typ);
        END IF;
    END LOOP;

    FOREACH t IN ARRAY ARRAY['prompt_tracking', 'analysis_jobs', 'ai_responses'] LOOP
        IF EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = to_regclass(t) AND attname = 'id' AND NOT attisdropped
                     AND atttypid = 'uuid'::regtype AND NOT atthasdef AND attidentity = '' AND attgenerated = '')
        THEN
            EXECUTE format('ALTER TABLE %I ALTER COLUMN id SET DEFAULT gen_random_uuid()', t);
        END IF;
    END LOOP;

    -- A legacy metadata of type json (not jsonb) would still break `metadata || jsonb`; the architecture
    -- notes say jsonb, and a column's type is not ours to change.
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = to_regclass('ai_responses') AND attname = 'metadata' AND NOT attisdropped
                 AND atttypid = 'jsonb'::regtype AND NOT atthasdef) THEN
        ALTER TABLE ai_responses ALTER COLUMN metadata SET DEFAULT '{}'::jsonb;
    END IF;
END $$;
