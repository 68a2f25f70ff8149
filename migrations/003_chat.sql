-- Tables for chat (issue: chat): channels, their members, messages (thread
-- replies included) and reactions. Written for PostgreSQL 15+ and
-- CockroachDB alike: plain tables and indexes, no triggers.

-- A channel is addressed as "type:id" (for example "messaging:general").
-- last_pos numbers every message (replies included): the order of
-- messageAdded. last_seq numbers top-level messages only: a member's unread
-- count is last_seq - channel_members.last_read_seq. Both are bumped by the
-- UPDATE that sends a message, which locks the row, so positions commit in
-- order.
CREATE TABLE IF NOT EXISTS channels (
    id              text        PRIMARY KEY,
    type            text        NOT NULL,
    name            text,
    image           text,
    data            jsonb,
    created_by      text        NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_seq        bigint      NOT NULL DEFAULT 0,
    last_pos        bigint      NOT NULL DEFAULT 0,
    last_message_id uuid,
    last_message_at timestamptz,
    member_count    int         NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS channel_members (
    channel_id           text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id              text        NOT NULL REFERENCES users (id),
    role                 text        NOT NULL,
    joined_at            timestamptz NOT NULL DEFAULT now(),
    last_read_seq        bigint      NOT NULL DEFAULT 0,
    last_read_at         timestamptz,
    last_read_message_id uuid,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX IF NOT EXISTS channel_members_by_user ON channel_members (user_id, channel_id);

-- seq is the channel's last_seq when the message was sent: its own number
-- for a top-level message, the preceding top-level message's for a reply
-- (so marking a reply read is O(1) too). pos is unique per channel.
CREATE TABLE IF NOT EXISTS messages (
    id          uuid        PRIMARY KEY,
    channel_id  text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    pos         bigint      NOT NULL,
    seq         bigint      NOT NULL,
    user_id     text        NOT NULL REFERENCES users (id),
    text        text        NOT NULL,
    type        text        NOT NULL,
    parent_id   uuid,
    reply_count int         NOT NULL DEFAULT 0,
    mentioned   text[],
    data        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (channel_id, pos)
);
CREATE INDEX IF NOT EXISTS messages_replies ON messages (parent_id, pos) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_text ON messages USING GIN (to_tsvector('simple', text));

CREATE TABLE IF NOT EXISTS message_reactions (
    message_id uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    text        NOT NULL REFERENCES users (id),
    kind       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, kind)
);
CREATE INDEX IF NOT EXISTS message_reactions_latest ON message_reactions (message_id, created_at DESC);
