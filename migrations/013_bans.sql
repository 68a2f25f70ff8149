-- Bans. channel_id '' is an app-wide ban. until NULL: for good; an expired
-- ban reads as none (compared with now()), so no sweeper is needed.
-- shadow: the user may still write, but its messages are visible to it
-- alone (messages.shadowed) and count for no one.
CREATE TABLE IF NOT EXISTS bans (
    user_id    text        NOT NULL REFERENCES users (id),
    channel_id text        NOT NULL,
    until      timestamptz,
    shadow     boolean     NOT NULL DEFAULT false,
    reason     text,
    banned_by  text        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, channel_id)
);
ALTER TABLE messages ADD COLUMN IF NOT EXISTS shadowed boolean NOT NULL DEFAULT false;
