package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Unread counts: PostgreSQL holds the truth (channels.last_seq and
// channel_members.last_read_seq); Redis holds one hash per user so that
// reading a user's counts across 1,000 channels is one round trip.
//
// The hash (chat:u:{u:<user>}) keeps, per channel, the highest sequence number
// counted (s:<channel>) and the read sequence number (r:<channel>): the
// channel's unread count is max(0, s - r). Both only ever grow, set with
// max(), so applying an update twice or out of order changes nothing: a
// retried job cannot double-count. The fields t and c keep the totals (sum
// of unread, channels with unread) for the notification events; ok marks
// the hash complete, gen counts invalidations. A hash without ok (after a
// flush, an eviction, a restart, or an invalidation) is rebuilt exactly
// from PostgreSQL by the next read.
//
// Channels above the push limit are not written per member: chat:seq:{c:<id>}
// holds their last_seq, and the user's chat:ub:{u:<user>} hash their read
// sequence numbers; reads compute those counts on the spot.

// UnreadCounts are a user's unread messages.
type UnreadCounts struct {
	TotalUnreadCount int
	UnreadChannels   int
	Channels         []*ChannelUnread
}

// ChannelUnread is a user's unread count in one channel.
type ChannelUnread struct {
	ChannelID   string
	UserID      string
	UnreadCount int
	// ReadAt is when the user last read the channel, when known.
	ReadAt *time.Time
	// Muted: the user mutes the channel, which leaves the totals.
	Muted bool
}

// UnreadTotals are a user's totals after a change, as events carry them.
type UnreadTotals struct {
	Total    int
	Channels int
	// Known is false when Redis could not say (incomplete counters).
	Known bool
}

// UnreadRow is one membership with its sequence numbers, from which a
// member's counters are rebuilt.
type UnreadRow struct {
	Channel       string
	LastSeq, Read int64
	Members       int
	ReadAt        *time.Time
	// Silenced is how many of the unread messages come from users the
	// member blocks or mutes; Muted, whether it mutes the channel.
	Silenced int64
	Muted    bool
}

// UnreadRows returns a user's memberships with their sequence numbers,
// for its counts. With silences (the user Silences someone or something,
// and its counts come from here alone) Silenced and Muted are read too:
// a query per membership that everyone else is spared.
func (s *Store) UnreadRows(ctx context.Context, user string, silences bool) ([]UnreadRow, error) {
	silenced, muted := `0::int8`, `false`
	if silences {
		silenced, muted = silencedUnread, channelMuted
	}
	rows, err := s.db.Query(ctx, `
		SELECT m.channel_id, c.last_seq, m.last_read_seq, c.member_count, m.last_read_at, `+silenced+`, `+muted+`, c.deleted_at IS NOT NULL
		FROM channel_members m JOIN channels c ON c.id = m.channel_id WHERE m.user_id = $1`, user)
	if err != nil {
		return nil, fmt.Errorf("store: unread rows: %w", err)
	}
	var out []UnreadRow
	var r UnreadRow
	var deleted bool
	// A deleted channel's row is skipped here, not in the statement: a
	// condition on channels.deleted_at, a column whose statistics a fresh
	// table lacks, made the planner expect a handful of channels and loop
	// over all of them per membership (25 ms for 1,000 channels).
	_, err = pgx.ForEachRow(rows, []any{&r.Channel, &r.LastSeq, &r.Read, &r.Members, &r.ReadAt, &r.Silenced, &r.Muted, &deleted}, func() error {
		if !deleted {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: unread rows: %w", err)
	}
	return out, nil
}

// UnreadCountsFromDB computes a user's unread counts from PostgreSQL alone:
// the truth, and the answer while Redis is down.
func (s *Store) UnreadCountsFromDB(ctx context.Context, user string) (*UnreadCounts, error) {
	silences, err := s.Silences(ctx, user)
	if err != nil {
		return nil, err
	}
	rows, err := s.UnreadRows(ctx, user, silences)
	if err != nil {
		return nil, err
	}
	return CountsFromRows(user, rows), nil
}

// CountsFromRows computes a user's unread counts from its memberships.
func CountsFromRows(user string, rows []UnreadRow) *UnreadCounts {
	out := &UnreadCounts{Channels: []*ChannelUnread{}}
	for _, r := range rows {
		if n := int(r.LastSeq - r.Read - r.Silenced); n > 0 {
			out.Channels = append(out.Channels, &ChannelUnread{ChannelID: r.Channel, UserID: user, UnreadCount: n, ReadAt: r.ReadAt, Muted: r.Muted})
		}
	}
	FinishCounts(out)
	return out
}

// FinishCounts sorts counts by channel and sums the totals, which leave
// out muted channels.
func FinishCounts(c *UnreadCounts) {
	slices.SortFunc(c.Channels, func(a, b *ChannelUnread) int { return strings.Compare(a.ChannelID, b.ChannelID) })
	c.TotalUnreadCount, c.UnreadChannels = 0, 0
	for _, ch := range c.Channels {
		if !ch.Muted && ch.UnreadCount > 0 {
			c.TotalUnreadCount += ch.UnreadCount
			c.UnreadChannels++
		}
	}
}

// UnreadTotalsFromDB computes users' totals from PostgreSQL, for events
// about users whose Redis counters are incomplete, and for the online
// members of a big channel on each of its messages: the silenced senders'
// messages are counted (a correlated query per membership) only for the
// few users who silence anyone, found first in one pass.
func (s *Store) UnreadTotalsFromDB(ctx context.Context, users []string) (map[string]UnreadTotals, error) {
	rows, err := s.db.Query(ctx, `
		WITH silencing AS (`+silencersAmong("$1")+`)
		SELECT user_id, sum(n)::int8, count(*) FROM (
			SELECT m.user_id, CASE WHEN c.deleted_at IS NOT NULL THEN 0
				WHEN m.user_id IN (SELECT u FROM silencing) THEN `+unreadOf+`
				ELSE c.last_seq - m.last_read_seq END AS n
			FROM channel_members m JOIN channels c ON c.id = m.channel_id
			WHERE m.user_id = ANY($1) AND c.last_seq > m.last_read_seq AND NOT `+channelMuted+`
		) AS u WHERE n > 0 GROUP BY user_id`, users)
	if err != nil {
		return nil, fmt.Errorf("store: unread totals: %w", err)
	}
	out := make(map[string]UnreadTotals, len(users))
	for _, u := range users {
		out[u] = UnreadTotals{Known: true}
	}
	var u string
	var total, chans int64
	_, err = pgx.ForEachRow(rows, []any{&u, &total, &chans}, func() error {
		out[u] = UnreadTotals{Total: int(total), Channels: int(chans), Known: true}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: unread totals: %w", err)
	}
	return out, nil
}

// RecentlyActiveChatUsers lists users whose counters changed since the
// given time (at most limit, a random choice when there are more), for
// the repair pass: those who read or were added to a channel, and the
// members of channels with a new message (by the time it was sent: a
// client may choose any id). Random, because one busy channel with more
// members than limit would otherwise fill every pass with the same users.
func (s *Store) RecentlyActiveChatUsers(ctx context.Context, since time.Time, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		SELECT user_id FROM (
			SELECT user_id FROM channel_members WHERE last_read_at >= $1 OR joined_at >= $1
			UNION
			SELECT m.user_id FROM channel_members m
			WHERE m.channel_id IN (SELECT channel_id FROM messages WHERE created_at >= $1)
		) AS active ORDER BY random() LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("store: active chat users: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
