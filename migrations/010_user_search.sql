-- searchUsers: users by the prefix of their display name (their id when
-- they have none), case-insensitive. The C collation makes a prefix a
-- plain byte range on this index, whatever the database's collation.
CREATE INDEX IF NOT EXISTS users_search ON users ((lower(coalesce(name, id)) COLLATE "C"), id);
