-- Threaded comments on activities, reactions to comments, and the keys
-- that make a notification happen once. Plain tables and indexes, no
-- trigger: every count is kept by the transaction that writes the rows it
-- counts.

-- An activity's comment count (comments and replies alike), kept in the
-- comment's own transaction: the activity's row orders every comment
-- write of the activity, so the count is exact, and a page of activities
-- reads it with no further statement.
ALTER TABLE activities ADD COLUMN IF NOT EXISTS comment_count bigint NOT NULL DEFAULT 0;

-- comments: parent_id is NULL for a comment on the activity itself, else
-- the comment it replies to (depth = parent's depth + 1, at most
-- FEED_COMMENT_DEPTH). reply_count counts direct replies, reaction_count
-- reactions of every kind: their sum ranks the TOP order.
CREATE TABLE IF NOT EXISTS comments (
    id             uuid        PRIMARY KEY,
    activity_id    uuid        NOT NULL,
    parent_id      uuid,
    depth          int         NOT NULL,
    user_id        text        NOT NULL,
    text           text        NOT NULL,
    data           jsonb,
    mentions       text[]      NOT NULL DEFAULT '{}',
    reply_count    bigint      NOT NULL DEFAULT 0,
    reaction_count bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- A page of an activity's comments, or of a comment's replies, newest or
-- oldest first, is one range scan.
CREATE INDEX IF NOT EXISTS comments_thread ON comments (activity_id, parent_id, id);

-- The TOP order: most reactions and replies first, then newest.
CREATE INDEX IF NOT EXISTS comments_top ON comments (activity_id, parent_id, (reaction_count + reply_count) DESC, id DESC);

-- Reactions to comments: one per (comment, user, kind), like reactions.
CREATE TABLE IF NOT EXISTS comment_reactions (
    id          uuid        PRIMARY KEY,
    comment_id  uuid        NOT NULL,
    activity_id uuid        NOT NULL,
    user_id     text        NOT NULL,
    kind        text        NOT NULL,
    data        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (comment_id, user_id, kind)
);

CREATE TABLE IF NOT EXISTS comment_reaction_counts (
    comment_id uuid   NOT NULL,
    kind       text   NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (comment_id, kind)
);

-- Activity.reactions(kind:) pages one kind with one range scan.
CREATE INDEX IF NOT EXISTS reactions_by_kind ON reactions (activity_id, kind, id DESC);

-- feed_notified makes a notification happen once per key in a feed: a
-- reaction notifies the activity's actor once per (user, activity, kind),
-- however often it is removed and added again.
CREATE TABLE IF NOT EXISTS feed_notified (
    feed_id text NOT NULL,
    key     text NOT NULL,
    PRIMARY KEY (feed_id, key)
);
