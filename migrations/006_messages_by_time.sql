-- Messages by the time they were sent: message ids order by time only when
-- the server makes them (UUIDv7), while a client may choose any UUID for
-- an idempotent send. Search results (newest first) and the unread repair
-- pass (channels with messages since a time) go by this instead.
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at);
