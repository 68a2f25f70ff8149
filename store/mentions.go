package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Unread mentions are counted from PostgreSQL, exactly: messages that
// count as unread (in the channel's history, not system messages), after
// the member's read position, that mention the member, from no user the
// member blocks or mutes. A deleted message keeps no mentions.

// unreadMentionsOf is the condition of a message m mentioning user u,
// unread by its channel membership cm.
var unreadMentionsOf = `m.mentioned @> ARRAY[%[1]s]::text[] AND m.seq > cm.last_read_seq
	AND (m.parent_id IS NULL OR m.show_in_channel) AND m.type <> 'system' AND NOT m.shadowed
	AND m.user_id NOT IN (` + silencedSenders("%[1]s") + `)`

// MemberKey names one member of one channel.
type MemberKey struct {
	Channel, User string
}

// UnreadMentions returns each member's unread mentions in its channel, in
// order (0 for one that is no member).
func (s *Store) UnreadMentions(ctx context.Context, keys []MemberKey) ([]int, error) {
	channels, users := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		channels[i], users[i] = k.Channel, k.User
	}
	rows, err := s.db.Query(ctx, `
		SELECT k.c, k.u, count(*) FROM unnest($1::text[], $2::text[]) AS k (c, u)
		JOIN channel_members cm ON cm.channel_id = k.c AND cm.user_id = k.u
		JOIN messages m ON m.channel_id = k.c AND `+fmt.Sprintf(unreadMentionsOf, "k.u")+`
		GROUP BY k.c, k.u`, channels, users)
	if err != nil {
		return nil, fmt.Errorf("store: unread mentions: %w", err)
	}
	found := map[MemberKey]int{}
	var k MemberKey
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&k.Channel, &k.User, &n}, func() error { found[k] = n; return nil }); err != nil {
		return nil, fmt.Errorf("store: unread mentions: %w", err)
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}

// TotalUnreadMentions returns a user's unread mentions across its channels.
func (s *Store) TotalUnreadMentions(ctx context.Context, user string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `
		SELECT count(*) FROM messages m
		JOIN channel_members cm ON cm.channel_id = m.channel_id AND cm.user_id = $1
		JOIN channels d ON d.id = m.channel_id AND d.deleted_at IS NULL
		WHERE `+fmt.Sprintf(unreadMentionsOf, "$1"), user).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: total unread mentions: %w", err)
	}
	return n, nil
}
