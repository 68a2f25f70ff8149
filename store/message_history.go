package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A channel's history, read by pages of positions, and threads' replies.

// ChannelHistory returns up to last messages of a channel's history
// (top-level messages and replies shown in the channel) sent before
// position before (0: the newest), oldest first. HasNext says older
// messages exist; HasPrev that newer ones do (always, after a before).
func (s *Store) ChannelHistory(ctx context.Context, channelID, viewer string, last int, before int64) (Page[*Message], error) {
	return s.ChannelHistoryWith(ctx, channelID, viewer, last, before, HistoryExtras{})
}

// HistoryExtras says what a history page reads in its messages' statement:
// the authors (Message.Sender) and the reaction counts (Message.Reactions),
// which a page's common selections ask for.
type HistoryExtras struct {
	Senders   bool
	Reactions bool
}

// ChannelHistoryWith is ChannelHistory with extras read in the same
// statement: one round trip where the page took three.
func (s *Store) ChannelHistoryWith(ctx context.Context, channelID, viewer string, last int, before int64, with HistoryExtras) (Page[*Message], error) {
	sql, args, hasPrev := historyStatement(channelID, viewer, last, before, with)
	rows, err := s.reader(ctx).Query(ctx, sql, args...)
	found, err := collectHistory(rows, err, with, last+1)
	if err != nil {
		return Page[*Message]{}, fmt.Errorf("store: channel history: %w", err)
	}
	return historyPage(found, last, hasPrev), nil
}

// ChannelForUserWithHistory is ChannelForUser and then ChannelHistoryWith
// of the same channel for the same user, in one round trip: both
// statements in one batch. The page is read before the access is known:
// it is the caller's to drop unless the access lets the user read. ok is
// false, and nothing was read, where the page would not be read from the
// primary (a read that may go to a replica): call the two apart then.
// err is the access's; page is nil where its statement failed.
func (s *Store) ChannelForUserWithHistory(ctx context.Context, channelID, userID string, last int, before int64, with HistoryExtras) (_ *ChannelAccess, page *Page[*Message], ok bool, err error) {
	if !s.readsPrimary(ctx) {
		return nil, nil, false, nil
	}
	b := &pgx.Batch{}
	b.Queue(channelForUserSQL, channelID, userID)
	sql, args, hasPrev := historyStatement(channelID, userID, last, before, with)
	b.Queue(sql, args...)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	a, err := scanChannelAccess(br.QueryRow(), channelID)
	if err != nil {
		return nil, nil, true, err
	}
	rows, err := br.Query()
	found, err := collectHistory(rows, err, with, last+1)
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return a, nil, true, nil
	}
	p := historyPage(found, last, hasPrev)
	return a, &p, true, nil
}

// historyStatement is the statement of ChannelHistoryWith and its
// arguments, and whether newer messages exist (after a before).
func historyStatement(channelID, viewer string, last int, before int64, with HistoryExtras) (string, []any, bool) {
	hasPrev := before > 0
	if before <= 0 {
		before = 1 << 62
	}
	page := `SELECT ` + messageColumns + ` FROM messages
		WHERE channel_id = $1 AND pos < $2 AND ` + inChannel + ` AND ` + visibleTo(4) + `
		ORDER BY pos DESC LIMIT $3`
	args := []any{channelID, before, last + 1, viewer}
	if !with.Senders && !with.Reactions {
		return page, args, hasPrev
	}
	return historyWith(page, with), args, hasPrev
}

// historyPage makes found (newest first, one more than last if there are
// older ones) a page, oldest first.
func historyPage(found []*Message, last int, hasPrev bool) Page[*Message] {
	p := PageOf(found, last)
	p.HasPrev = hasPrev
	slices.Reverse(p.Items) // oldest first
	return p
}

// historyWith is page (a statement of messageColumns ordered by pos
// descending) joined with what with asks for, in that order.
func historyWith(page string, with HistoryExtras) string {
	q := `SELECT m.*`
	from := ` FROM (` + page + `) m`
	if with.Senders {
		// Every message has its author (messages.user_id references users).
		q += `, u.id, u.name, u.image, u.data, u.role, u.last_active, u.created_at, u.updated_at`
		from += ` JOIN users u ON u.id = m.user_id`
	}
	if with.Reactions {
		// As MessageReactionCounts: most first, then by kind.
		q += `, rc.kinds, rc.counts`
		from += ` LEFT JOIN LATERAL (SELECT array_agg(kind ORDER BY n DESC, kind) AS kinds, array_agg(n ORDER BY n DESC, kind) AS counts
			FROM (SELECT kind, count(*) AS n FROM message_reactions WHERE message_id = m.id GROUP BY kind) k) rc ON true`
	}
	return q + from + ` ORDER BY m.pos DESC`
}

// collectHistory reads the rows of historyStatement's statement made with
// with; n is its limit. A page's messages and authors are allocated in one
// slice each, and the scan's destinations once: the page is the hottest
// read, and a value per column and row showed in its profile.
func collectHistory(rows pgx.Rows, err error, with HistoryExtras, n int) ([]*Message, error) {
	if err != nil {
		return nil, err
	}
	if !with.Senders && !with.Reactions {
		return collectMessages(rows, nil)
	}
	defer rows.Close()
	msgs := make([]Message, n)
	var users []User
	if with.Senders {
		users = make([]User, n)
	}
	found := make([]*Message, 0, n)
	dest := make([]any, 0, 31)
	var kinds []string
	var counts []int64
	for rows.Next() {
		i := len(found)
		if i == n {
			return nil, fmt.Errorf("store: history: more than %d rows", n)
		}
		m := &msgs[i]
		dest = m.appendDest(dest[:0])
		if with.Senders {
			u := &users[i]
			dest = append(dest, &u.ID, &u.Name, &u.Image, &u.Data, &u.Role, &u.LastActive, &u.CreatedAt, &u.UpdatedAt)
		}
		if with.Reactions {
			kinds, counts = nil, nil
			dest = append(dest, &kinds, &counts)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if with.Senders {
			m.Sender = &users[i]
		}
		if with.Reactions {
			// Empty, not nil: the message has none.
			m.Reactions = make([]ReactionCount, len(kinds))
			for i := range kinds {
				m.Reactions[i] = ReactionCount{Kind: kinds[i], Count: int(counts[i])}
			}
		}
		found = append(found, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return found, nil
}

// ChannelHistoryAfter returns up to last messages of a channel's history
// sent after position after, oldest first. HasPrev says newer messages
// exist; HasNext that older ones do.
func (s *Store) ChannelHistoryAfter(ctx context.Context, channelID, viewer string, last int, after int64) (Page[*Message], error) {
	found, err := collectMessages(s.reader(ctx).Query(ctx, `
		SELECT `+messageColumns+` FROM messages
		WHERE channel_id = $1 AND pos > $2 AND `+inChannel+` AND `+visibleTo(4)+`
		ORDER BY pos LIMIT $3`, channelID, after, last+1, viewer))
	if err != nil {
		return Page[*Message]{}, fmt.Errorf("store: channel history: %w", err)
	}
	newer := PageOf(found, last)
	var older bool
	if err := s.reader(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE channel_id = $1 AND pos <= $2 AND `+inChannel+` AND `+visibleTo(3)+`)`,
		channelID, after, viewer).Scan(&older); err != nil {
		return Page[*Message]{}, fmt.Errorf("store: channel history: %w", err)
	}
	return Page[*Message]{Items: newer.Items, HasNext: older, HasPrev: newer.HasNext}, nil
}

// ChannelHistoryAround returns a window of last messages of a channel's
// history holding the message at position at: up to last/2 older ones
// before it, newer ones after, oldest first.
func (s *Store) ChannelHistoryAround(ctx context.Context, channelID, viewer string, last int, at int64) (Page[*Message], error) {
	older, err := s.ChannelHistory(ctx, channelID, viewer, last/2+1, at+1) // the message and older ones
	if err != nil {
		return Page[*Message]{}, err
	}
	newer, err := s.ChannelHistoryAfter(ctx, channelID, viewer, last-len(older.Items), at)
	if err != nil {
		return Page[*Message]{}, err
	}
	return Page[*Message]{Items: append(older.Items, newer.Items...), HasNext: older.HasNext, HasPrev: newer.HasPrev}, nil
}

// Replies returns first+1 replies of a thread after position after, as
// viewer sees them.
func (s *Store) Replies(ctx context.Context, parent uuid.UUID, viewer string, first int, after int64) (Page[*Message], error) {
	found, err := collectMessages(s.reader(ctx).Query(ctx, `
		SELECT `+messageColumns+` FROM messages WHERE parent_id = $1 AND pos > $2 AND `+visibleTo(4)+`
		ORDER BY pos LIMIT $3`, parent, after, first+1, viewer))
	if err != nil {
		return Page[*Message]{}, fmt.Errorf("store: replies: %w", err)
	}
	return PageOf(found, first), nil
}

// MessagesAfter returns up to limit messages of a channel (replies
// included) with positions in (after, upTo], in order.
func (s *Store) MessagesAfter(ctx context.Context, channelID string, after, upTo int64, limit int) ([]*Message, error) {
	found, err := collectMessages(s.db.Query(ctx, `
		SELECT `+messageColumns+` FROM messages WHERE channel_id = $1 AND pos > $2 AND pos <= $3
		ORDER BY pos LIMIT $4`, channelID, after, upTo, limit))
	if err != nil {
		return nil, fmt.Errorf("store: messages after: %w", err)
	}
	return found, nil
}

// PosCursor is the cursor of a message's position.
func PosCursor(m *Message) string { return strconv.FormatInt(m.Pos, 10) }

// ParsePos decodes a position cursor.
func ParsePos(field, cursor string) (int64, error) {
	s, err := DecodeCursor(field, cursor)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, Invalid(field, "is not a valid cursor; pass an endCursor from a previous page")
	}
	return n, nil
}
