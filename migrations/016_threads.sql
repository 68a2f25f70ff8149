-- Threads a user takes part in (Query.threads) and its read position in
-- each (Thread.unreadReplies, markThreadRead).
--
-- A row per thread (parent_id: the thread's first message) and user: the
-- thread's starter, once a reply it can see arrives, and each member who
-- replied. Written by the reply's own transaction, no trigger:
-- last_reply_at is bumped on every participant's row by a reply they can
-- see (a shadowed reply bumps its author's row alone), so the list reads
-- one index in order. last_read_pos is the channel position (messages.pos)
-- of the last reply the user has read: replying and markThreadRead move
-- it, never backwards. Unread replies are counted at read time: replies
-- after it, by others, not shadowed. shadow: the user's only part in the
-- thread is shadowed replies, so it is no participant to anyone else.
CREATE TABLE IF NOT EXISTS thread_participants (
    parent_id     uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id       text        NOT NULL REFERENCES users (id),
    joined_at     timestamptz NOT NULL,
    last_reply_at timestamptz NOT NULL,
    last_read_pos bigint      NOT NULL DEFAULT 0,
    last_read_at  timestamptz,
    shadow        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (parent_id, user_id)
);
CREATE INDEX IF NOT EXISTS thread_participants_by_user ON thread_participants (user_id, last_reply_at DESC, parent_id DESC);

-- The threads that exist already: their starters and the members who
-- replied, with everything sent so far read (an upgrade floods no one
-- with unread replies).
INSERT INTO thread_participants (parent_id, user_id, joined_at, last_reply_at, last_read_pos, shadow)
SELECT x.parent_id, x.user_id, min(x.joined_at),
    (SELECT max(r.created_at) FROM messages r WHERE r.parent_id = x.parent_id AND (NOT r.shadowed OR r.user_id = x.user_id)),
    (SELECT max(r.pos) FROM messages r WHERE r.parent_id = x.parent_id),
    bool_and(x.shadow)
FROM (
    SELECT r.parent_id, r.user_id, min(r.created_at) AS joined_at, bool_and(r.shadowed) AS shadow
    FROM messages r JOIN messages p ON p.id = r.parent_id
    JOIN channel_members cm ON cm.channel_id = r.channel_id AND cm.user_id = r.user_id
    GROUP BY r.parent_id, r.user_id
    UNION ALL
    SELECT p.id, p.user_id, p.created_at, false FROM messages p
    WHERE EXISTS (SELECT 1 FROM messages r WHERE r.parent_id = p.id AND NOT r.shadowed)
) x
GROUP BY x.parent_id, x.user_id
ON CONFLICT (parent_id, user_id) DO NOTHING;
