-- Blocks: the blocker sees none of the blocked user's messages, and they
-- count for it not; the blocked user cannot send where the two are alone.
CREATE TABLE IF NOT EXISTS user_blocks (
    blocker_id text        NOT NULL REFERENCES users (id),
    blocked_id text        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id)
);
-- Mutes: a muted user's messages count no unread and notify nothing for
-- the muter; a muted channel keeps its own count but leaves the totals.
-- until NULL: for good; an expired mute reads as none (compared with
-- now()), so no sweeper is needed.
CREATE TABLE IF NOT EXISTS user_mutes (
    muter_id   text        NOT NULL REFERENCES users (id),
    muted_id   text        NOT NULL REFERENCES users (id),
    until      timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (muter_id, muted_id)
);
ALTER TABLE channel_members ADD COLUMN IF NOT EXISTS muted boolean NOT NULL DEFAULT false;
ALTER TABLE channel_members ADD COLUMN IF NOT EXISTS muted_until timestamptz;
-- hidden_at: hidden from the member's channel list until a newer message.
ALTER TABLE channel_members ADD COLUMN IF NOT EXISTS hidden_at timestamptz;
-- A deleted channel reads as none; its rows stay (soft delete).
ALTER TABLE channels ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
-- Counting a member's unread messages from users it blocked or muted.
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (user_id, channel_id, seq);
-- A message's silenced members: the channel's muted ones, the sender's
-- blockers and muters.
CREATE INDEX IF NOT EXISTS channel_members_muted ON channel_members (channel_id) WHERE muted;
CREATE INDEX IF NOT EXISTS user_blocks_blocked ON user_blocks (blocked_id);
CREATE INDEX IF NOT EXISTS user_mutes_muted ON user_mutes (muted_id);
