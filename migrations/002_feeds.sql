-- Activity feeds. A feed is "group:owner" (user:alice, timeline:bob); feeds
-- exist implicitly, so a feeds row is written only once a feed has follow
-- counts. Plain tables and indexes for PostgreSQL 15+ and CockroachDB.

-- activities holds every activity once; feeds hold references to it.
CREATE TABLE IF NOT EXISTS activities (
    id         uuid        PRIMARY KEY,
    feed_id    text        NOT NULL,           -- the origin feed
    actor_id   text        NOT NULL,
    verb       text        NOT NULL,
    object     text        NOT NULL,
    target     text,
    foreign_id text,
    time       timestamptz NOT NULL,
    data       jsonb,
    to_feeds   text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Posting the same (feed, foreign_id, time) again returns the first activity.
CREATE UNIQUE INDEX IF NOT EXISTS activities_foreign_id
    ON activities (feed_id, foreign_id, time) WHERE foreign_id IS NOT NULL;

-- feed_entries is every feed's content: one row per activity in a feed.
-- A page of a feed is one range scan of the primary key. origin is the feed
-- the entry came through (the followed feed), so unfollow can remove it.
CREATE TABLE IF NOT EXISTS feed_entries (
    feed_id     text NOT NULL,
    activity_id uuid NOT NULL,
    origin      text NOT NULL,
    PRIMARY KEY (feed_id, activity_id)
);

-- removeActivity finds every copy of an activity through this index.
CREATE INDEX IF NOT EXISTS feed_entries_activity ON feed_entries (activity_id);

-- follows: source (a timeline feed) follows target (a user feed).
-- pull_from is the oldest activity of target the source sees: the follow's
-- backfill boundary, which the read-time pull of large actors respects too.
-- pulled marks follows whose source merges target's activities at read time
-- (target is above the pull threshold, or its followers are being backfilled).
CREATE TABLE IF NOT EXISTS follows (
    source     text        NOT NULL,
    target     text        NOT NULL,
    pull_from  uuid        NOT NULL,
    pulled     boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, target)
);

-- A timeline page finds the feeds it merges with one small index scan.
CREATE INDEX IF NOT EXISTS follows_pulled ON follows (source, target) WHERE pulled;

-- Fan-out pages through a target's followers in source order; pull_from is
-- in the key so a page is an index-only scan.
CREATE INDEX IF NOT EXISTS follows_target ON follows (target, source, pull_from);

-- feeds keeps follow counts. pulled_since is set while a feed's followers
-- merge it at read time: from when it crossed the pull threshold until a
-- demotion has copied what it posted meanwhile into their timelines.
CREATE TABLE IF NOT EXISTS feeds (
    id              text   PRIMARY KEY,
    follower_count  bigint NOT NULL DEFAULT 0,
    following_count bigint NOT NULL DEFAULT 0,
    pulled_since    uuid
);

-- feed_marks records seen/read state of aggregated and notification feeds:
-- everything up to seen_until/read_until, plus groups marked one by one
-- (group_id "verb/day", up to the newest activity the group had then).
CREATE TABLE IF NOT EXISTS feed_marks (
    feed_id  text NOT NULL,
    group_id text NOT NULL,      -- '' for the whole-feed watermark
    seen_upto uuid,
    read_upto uuid,
    PRIMARY KEY (feed_id, group_id)
);

-- reactions to activities: one per (activity, user, kind).
CREATE TABLE IF NOT EXISTS reactions (
    id          uuid        PRIMARY KEY,
    activity_id uuid        NOT NULL,
    user_id     text        NOT NULL,
    kind        text        NOT NULL,
    data        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (activity_id, user_id, kind)
);

CREATE INDEX IF NOT EXISTS reactions_latest ON reactions (activity_id, id DESC);

-- reaction_counts keeps per-kind counts so a page reads them in one lookup.
CREATE TABLE IF NOT EXISTS reaction_counts (
    activity_id uuid   NOT NULL,
    kind        text   NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (activity_id, kind)
);
