-- The registrable domain of a citation ("site"): en.m.wikipedia.org and wikipedia.org group as
-- wikipedia.org, blog.example.co.uk as example.co.uk (public-suffix list).  `domain` keeps the full host
-- (without www.), as the contract says.  Nullable: rows written before this version have none.
ALTER TABLE ai_response_citations ADD COLUMN IF NOT EXISTS site text;
CREATE INDEX IF NOT EXISTS ai_response_citations_site_idx ON ai_response_citations (site);
