-- Counts the transactions that removed members from a channel. The events
-- that could still reach a removed member (message.new, member.removed)
-- carry it, so that an open subscription can tell that a removal happened
-- that it has not heard of yet, and check before it delivers.
ALTER TABLE channels ADD COLUMN IF NOT EXISTS member_removals bigint NOT NULL DEFAULT 0;
