package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Threads: a thread is a top-level message (its parent) with its replies.
// Its participants (thread_participants) are its starter, once a reply it
// can see arrives, and the members who replied; each has a read position
// in the thread and the time of the last reply it can see, which orders
// its thread list. The reply's own transaction keeps both.

// Thread is a thread as one user sees it.
type Thread struct {
	// ParentMessage is the thread's first message.
	ParentMessage *Message
	// UserID is the user whose view this is.
	UserID string
	// ReplyCount is the parent's count of replies (shadowed ones left out).
	ReplyCount int
	// UnreadReplies are the replies after the user's read position, sent
	// by others and not shadowed.
	UnreadReplies int
	// LastReplyAt is when the last reply the user can see was sent.
	LastReplyAt time.Time
	// LastReadAt is when the user last read the thread (replying reads it).
	LastReadAt *time.Time
}

// threadParent is what a reply's transaction read of its thread's first
// message.
type threadParent struct {
	ID        uuid.UUID
	UserID    string
	CreatedAt time.Time
}

// replyTo locks a reply's parent, checks it is a top-level message of the
// channel, and, for a reply others see, counts the reply and moves the
// thread up every participant's list.
func (tx *Store) replyTo(ctx context.Context, parent uuid.UUID, channelID string, shadowed bool) (*threadParent, error) {
	p := &threadParent{ID: parent}
	var parentChannel string
	var parentParent *uuid.UUID
	err := tx.db.QueryRow(ctx, `SELECT channel_id, parent_id, user_id, created_at FROM messages WHERE id = $1 FOR UPDATE`, parent).
		Scan(&parentChannel, &parentParent, &p.UserID, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && parentChannel != channelID) {
		return nil, Invalid("input.parentId", "message %s is not in channel %q", parent, channelID)
	}
	if err != nil {
		return nil, err
	}
	if parentParent != nil {
		return nil, Invalid("input.parentId", "message %s is itself a reply: reply to the thread's first message", parent)
	}
	if shadowed {
		return p, nil // counted for no one, moves no one's list
	}
	// One statement for two tables: a data-modifying WITH runs whether or
	// not the main statement reads it (PostgreSQL and CockroachDB alike).
	// now() is the transaction's time: the reply's created_at.
	if _, err := tx.db.Exec(ctx, `
		WITH bumped AS (UPDATE thread_participants SET last_reply_at = now() WHERE parent_id = $1 RETURNING 1)
		UPDATE messages SET reply_count = reply_count + 1 WHERE id = $1`, parent); err != nil {
		return nil, err
	}
	return p, nil
}

// recordReply makes a reply's author (a member) a participant of its
// thread with the thread read up to the reply, and the thread's starter one
// too when others see the reply. A member's own shadowed replies make it a
// participant to itself alone.
func (tx *Store) recordReply(ctx context.Context, p *threadParent, userID string, member bool, pos int64, shadowed bool) error {
	var users []string
	var joined []*time.Time // nil: now
	var read []int64
	var shadow []bool
	if !shadowed && p.UserID != userID {
		users, joined, read, shadow = append(users, p.UserID), append(joined, &p.CreatedAt), append(read, 0), append(shadow, false)
	}
	if member {
		var j *time.Time
		if p.UserID == userID {
			j = &p.CreatedAt // a starter is its thread's first participant
		}
		users, joined, read, shadow = append(users, userID), append(joined, j), append(read, pos), append(shadow, shadowed)
	}
	if len(users) == 0 {
		return nil
	}
	_, err := tx.db.Exec(ctx, `
		INSERT INTO thread_participants AS tp (parent_id, user_id, joined_at, last_reply_at, last_read_pos, last_read_at, shadow)
		SELECT $1, x.u, coalesce(x.j, now()), now(), x.r,
			CASE WHEN x.r > 0 THEN now() END, x.s
		FROM unnest($2::text[], $3::timestamptz[], $4::int8[], $5::bool[]) AS x (u, j, r, s)
		ON CONFLICT (parent_id, user_id) DO UPDATE SET
			last_reply_at = greatest(tp.last_reply_at, excluded.last_reply_at),
			last_read_pos = greatest(tp.last_read_pos, excluded.last_read_pos),
			last_read_at = coalesce(excluded.last_read_at, tp.last_read_at),
			shadow = tp.shadow AND excluded.shadow`, p.ID, users, joined, read, shadow)
	return err
}

// threadColumns are a Thread's columns after the parent's messageColumns
// (p.): the reply count, the unread replies, the last reply and the last
// read. tp is the viewer's participation; a viewer without one has read
// everything, and its last reply is the last one it can see. Replies of
// users the viewer blocks or mutes are unread for it never.
var threadColumns = `p.reply_count,
	CASE WHEN tp.user_id IS NULL THEN 0 ELSE (SELECT count(*) FROM messages r
		WHERE r.parent_id = p.id AND r.pos > tp.last_read_pos AND r.user_id <> tp.user_id AND NOT r.shadowed
		  AND r.user_id NOT IN (` + silencedSenders("tp.user_id") + `)) END,
	coalesce(tp.last_reply_at, (SELECT max(r.created_at) FROM messages r WHERE r.parent_id = p.id AND (NOT r.shadowed OR r.user_id = $1)), p.created_at),
	tp.last_read_at`

func scanThread(row pgx.Row, viewer string) (*Thread, error) {
	t := &Thread{ParentMessage: &Message{}, UserID: viewer}
	if err := row.Scan(append(t.ParentMessage.dest(), &t.ReplyCount, &t.UnreadReplies, &t.LastReplyAt, &t.LastReadAt)...); err != nil {
		return nil, err
	}
	return t, nil
}

// UserThreads lists the threads a user started or replied in, in channels
// it is still a member of, the latest reply first: first+1 rows after the
// cursor position (ThreadCursor; "" for the start). One index walk
// (thread_participants_by_user) in order.
func (s *Store) UserThreads(ctx context.Context, userID string, first int, after string) (Page[*Thread], error) {
	afterAt, afterID := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), uuid.Max // the start
	if after != "" {
		at, id, ok := strings.Cut(after, "|")
		parsed, err := uuid.Parse(id)
		micros, perr := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || perr != nil {
			return Page[*Thread]{}, Invalid("after", "is not a valid cursor; pass an endCursor from a previous page")
		}
		afterAt, afterID = time.UnixMicro(micros), parsed
	}
	rows, err := s.reader(ctx).Query(ctx, `
		SELECT `+prefixed("p.", messageColumns)+`, `+threadColumns+`
		FROM thread_participants tp
		JOIN messages p ON p.id = tp.parent_id
		JOIN channel_members cm ON cm.channel_id = p.channel_id AND cm.user_id = tp.user_id
		JOIN channels d ON d.id = p.channel_id AND d.deleted_at IS NULL
		WHERE tp.user_id = $1 AND (NOT p.shadowed OR p.user_id = $1) AND NOT `+blockedBy("$1", "p.user_id")+`
		  AND (tp.last_reply_at, tp.parent_id) < ($2::timestamptz, $3::uuid)
		ORDER BY tp.last_reply_at DESC, tp.parent_id DESC LIMIT $4`, userID, afterAt, afterID, first+1)
	if err != nil {
		return Page[*Thread]{}, fmt.Errorf("store: user threads: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Thread, error) { return scanThread(r, userID) })
	if err != nil {
		return Page[*Thread]{}, fmt.Errorf("store: user threads: %w", err)
	}
	return PageOf(found, first), nil
}

// ThreadCursor is a thread's position in UserThreads.
func ThreadCursor(t *Thread) string {
	return fmt.Sprintf("%d|%s", t.LastReplyAt.UnixMicro(), t.ParentMessage.ID)
}

// MarkThreadRead moves a user's read position in a thread to its last
// reply (never backwards) and returns the thread as the user sees it.
// marked is false when the user takes no part in the thread: it has no
// read position there, and nothing changes.
func (s *Store) MarkThreadRead(ctx context.Context, parent uuid.UUID, userID string) (t *Thread, marked bool, err error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE thread_participants SET last_read_at = now(), last_read_pos = greatest(last_read_pos,
			coalesce((SELECT max(pos) FROM messages WHERE parent_id = $1), 0))
		WHERE parent_id = $1 AND user_id = $2`, parent, userID)
	if err != nil {
		return nil, false, fmt.Errorf("store: mark thread read: %w", err)
	}
	t, err = scanThread(s.db.QueryRow(ctx, `
		SELECT `+prefixed("p.", messageColumns)+`, `+threadColumns+`
		FROM messages p LEFT JOIN thread_participants tp ON tp.parent_id = p.id AND tp.user_id = $1
		WHERE p.id = $2`, userID, parent), userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, NotFound("message", parent.String())
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: mark thread read: %w", err)
	}
	return t, tag.RowsAffected() > 0, nil
}

// ThreadParticipants returns, per thread, up to n of its participants as
// viewer sees them (shadow participants are their own alone), in the order
// they took part: the starter first.
func (s *Store) ThreadParticipants(ctx context.Context, viewer string, parents []uuid.UUID, n int) ([][]string, error) {
	rows, err := s.db.Query(ctx, `
		SELECT k.id, tp.user_id FROM unnest($1::uuid[]) AS k (id)
		CROSS JOIN LATERAL (SELECT user_id, joined_at FROM thread_participants
			WHERE parent_id = k.id AND (NOT shadow OR user_id = $2)
			ORDER BY joined_at, user_id LIMIT $3) tp
		ORDER BY k.id, tp.joined_at, tp.user_id`, parents, viewer, n)
	if err != nil {
		return nil, fmt.Errorf("store: thread participants: %w", err)
	}
	by := map[uuid.UUID][]string{}
	var id uuid.UUID
	var user string
	if _, err := pgx.ForEachRow(rows, []any{&id, &user}, func() error { by[id] = append(by[id], user); return nil }); err != nil {
		return nil, fmt.Errorf("store: thread participants: %w", err)
	}
	out := make([][]string, len(parents))
	for i, p := range parents {
		out[i] = by[p]
		if out[i] == nil {
			out[i] = []string{}
		}
	}
	return out, nil
}
