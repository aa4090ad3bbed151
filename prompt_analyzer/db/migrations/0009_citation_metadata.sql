-- Where a citation's URL came from when it is not the provider's own link: Gemini lists its sources as
-- grounding redirects (vertexaisearch.cloud.google.com/grounding-api-redirect/...) that expire within
-- days; the engine resolves each to its target page and keeps the redirect here as
-- {"redirect": link, "resolved": true|false} (providers/redirects.py).
ALTER TABLE ai_response_citations ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Rows written before: their URL is still the redirect and their domain Google's redirect host, which
-- no citation metric may count.  The redirect moves to metadata (unresolved: the links have expired by
-- now), and the domain becomes the title where the title is a bare domain (what Gemini usually puts
-- there), else none.
UPDATE ai_response_citations
SET metadata = metadata || jsonb_build_object('redirect', url, 'resolved', false),
    domain = CASE WHEN lower(btrim(title)) ~ '^[a-z0-9-]+(\.[a-z0-9-]+)+$'
                  THEN regexp_replace(lower(btrim(title)), '^www\.', '') ELSE '' END,
    site = NULL
WHERE domain = 'vertexaisearch.cloud.google.com' AND url LIKE '%/grounding-api-redirect/%';
