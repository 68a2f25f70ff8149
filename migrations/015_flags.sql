-- Flags: a user's report of a message, a user or an activity, for the
-- moderators to act on. target_id is the message or activity id, or the
-- user id; subject_id is whom the flag is about (the message's author,
-- the user, the activity's actor: whom BAN_USER bans), kept so that
-- acting on a flag needs nothing the target may have lost. channel_id is
-- a message flag's channel ('' for the others): its owners and
-- moderators handle it.
-- status: open, dismissed or resolved; action, resolved_by and
-- resolved_at are set when it is closed.
CREATE TABLE IF NOT EXISTS flags (
    id          uuid        PRIMARY KEY,
    target_kind text        NOT NULL,
    target_id   text        NOT NULL,
    channel_id  text        NOT NULL DEFAULT '',
    subject_id  text        NOT NULL REFERENCES users (id),
    reason      text,
    flagged_by  text        NOT NULL REFERENCES users (id),
    status      text        NOT NULL DEFAULT 'open',
    action      text,
    resolved_by text        REFERENCES users (id),
    resolved_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- One open flag per user and target: flagging again while it is open
-- returns it (decided by this index under concurrency).
CREATE UNIQUE INDEX IF NOT EXISTS flags_open_once ON flags (flagged_by, target_kind, target_id) WHERE status = 'open';
-- flags(status), newest first (ids are time-ordered): admins read all,
-- a channel's owners and moderators those of its messages.
CREATE INDEX IF NOT EXISTS flags_by_status ON flags (status, id);
CREATE INDEX IF NOT EXISTS flags_by_channel ON flags (channel_id, status, id);
