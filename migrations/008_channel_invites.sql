-- Invitations to channels (inviteMembers): an invited user is no member
-- (it counts no unread, reads no stream) until it accepts, when its row
-- here becomes a channel_members row. A separate table keeps every
-- membership query as it was.
CREATE TABLE IF NOT EXISTS channel_invites (
    channel_id text        NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    text        NOT NULL REFERENCES users (id),
    invited_by text        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX IF NOT EXISTS channel_invites_by_user ON channel_invites (user_id, channel_id);
