-- Link previews (issue 21): what fetching a URL gave, so that many
-- messages and activities with one URL fetch it once per
-- BROOK_PREVIEW_CACHE_TTL. preview is the LINK attachment (store.Attachment
-- as JSON), NULL when the page gives none (missing, not HTML, no title,
-- refused address): that is remembered too, so a dead link is not fetched
-- for every message that repeats it. A periodic job deletes rows older
-- than the TTL, by fetched_at.
CREATE TABLE IF NOT EXISTS link_previews (
    url        text PRIMARY KEY,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    preview    jsonb
);
CREATE INDEX IF NOT EXISTS link_previews_fetched ON link_previews (fetched_at);
