-- Unread mentions (Member.unreadMentions, UnreadCounts.totalUnreadMentions)
-- are counted in PostgreSQL from the messages that mention a user: an
-- inverted index finds them (PostgreSQL GIN; CockroachDB inverted index).
CREATE INDEX IF NOT EXISTS messages_mentioned ON messages USING GIN (mentioned);
