-- Quoted replies, thread replies shown in the channel, and pins.
--
-- show_in_channel: a thread reply that also appears in the channel's
-- history; it takes a top-level sequence number, so it counts as unread
-- like any message of the channel.
-- pinned_at/pinned_by/pin_expires_at: a pin; an expired pin is read as
-- none (the queries compare with now()), so no sweeper is needed.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS quoted_id uuid;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS show_in_channel boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS pinned_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS pinned_by text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS pin_expires_at timestamptz;
CREATE INDEX IF NOT EXISTS messages_pinned ON messages (channel_id, pinned_at DESC, id) WHERE pinned_at IS NOT NULL;
