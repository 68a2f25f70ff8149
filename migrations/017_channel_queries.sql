-- Channel queries (channels(filter:, sort:)). The caller's own list, its
-- memberships and invitations, is read by channel_members_by_user and
-- channel_invites_by_user and sorted in memory: its cost grows with the
-- channels the caller is in, whatever the filter and sort.
--
-- joined: false lists the channels open to anyone that the caller is not
-- in: these partial indexes hold those (the predicate is the chat
-- product's rule, the join policy or the type's default, written as the
-- query writes it) by each sort key a message does not change. None is on
-- last_message_at (nor on last_seq): every sendMessage updates it, and an
-- index on it would make that update non-HOT, rewriting every index of
-- the channel's row for each message. member_count changes only with
-- membership.
CREATE INDEX IF NOT EXISTS channels_open_created ON channels (created_at, id)
    WHERE join_policy = 'OPEN' OR (join_policy IS NULL AND type = 'livestream');
CREATE INDEX IF NOT EXISTS channels_open_members ON channels (member_count, id)
    WHERE join_policy = 'OPEN' OR (join_policy IS NULL AND type = 'livestream');
-- NAME and nameStartsWith: the C collation makes a prefix a plain byte
-- range, whatever the database's collation.
CREATE INDEX IF NOT EXISTS channels_open_name ON channels ((lower(coalesce(name, '')) COLLATE "C"), id)
    WHERE join_policy = 'OPEN' OR (join_policy IS NULL AND type = 'livestream');
-- filter.data: jsonb containment (@>) by an inverted index (PostgreSQL
-- GIN; CockroachDB inverted index).
CREATE INDEX IF NOT EXISTS channels_data ON channels USING GIN (data);
