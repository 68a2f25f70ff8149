-- Channel moderation state. frozen: only owners, moderators and admins
-- may send. cooldown_seconds: slow mode, one message per member per that
-- many seconds (0: off; owners, moderators and admins exempt), checked
-- against channel_members.last_sent_at by the send's own statements.
ALTER TABLE channels ADD COLUMN IF NOT EXISTS frozen boolean NOT NULL DEFAULT false;
ALTER TABLE channels ADD COLUMN IF NOT EXISTS cooldown_seconds int NOT NULL DEFAULT 0;
ALTER TABLE channel_members ADD COLUMN IF NOT EXISTS last_sent_at timestamptz;
