-- Search, bookmarks (issue 19). Imports need no table of their own: each
-- batch is copied into a temporary table of its transaction.

-- searchActivities: full text over object, target and the string values of
-- data, with the 'simple' configuration (no stemming, no stop words: any
-- language). The query repeats this expression exactly, so the planner
-- matches it to the index.
CREATE INDEX IF NOT EXISTS activities_search ON activities USING GIN ((
    to_tsvector('simple', object || ' ' || coalesce(target, ''))
    || jsonb_to_tsvector('simple', coalesce(data, '{}'::jsonb), '["string"]')));

-- bookmarks: a user's saved activities, in folders ('' is the default).
-- id is a time-ordered UUID: the newest first is a range scan of either
-- index.
CREATE TABLE IF NOT EXISTS bookmarks (
    id          uuid        NOT NULL,
    user_id     text        NOT NULL,
    folder      text        NOT NULL,
    activity_id uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, folder, activity_id)
);

CREATE UNIQUE INDEX IF NOT EXISTS bookmarks_by_user ON bookmarks (user_id, id);
CREATE INDEX IF NOT EXISTS bookmarks_by_folder ON bookmarks (user_id, folder, id);
