package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Threads: the caller's thread list and its read position in each thread.
// A reply marks its thread read for its author in the reply's own
// transaction (store.SendMessage); markThreadRead for anyone taking part.
// Threads and channels are read apart, as Stream keeps them: markRead and
// markAllRead move no thread's read position, and reading a thread moves
// no channel's.

// ThreadParticipantsShown is how many participants a Thread shows.
const ThreadParticipantsShown = 5

// Threads lists the threads the caller started or replied in, in channels
// it is still a member of, the latest reply first.
func (s *Service) Threads(ctx context.Context, first *int, after *string) (store.Page[*store.Thread], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Thread]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.Thread]{}, err
	}
	return s.store.UserThreads(ctx, me.UserID, n, pos)
}

// MarkThreadRead marks the thread of message (its first message) read up
// to its last reply for the caller, a member of its channel, and tells the
// caller's other connections. A parent the caller may not read is
// NOT_FOUND; a reply, or a message without replies, is no thread's parent.
// A member who takes no part in the thread has no read position in it:
// nothing changes, and it has no unread replies there.
func (s *Service) MarkThreadRead(ctx context.Context, message string) (*store.Thread, error) {
	m, a, me, err := s.messageAccess(ctx, "message", message)
	if err == nil && !CanRead(a, me) {
		err = store.NotFound("message", message)
	}
	if err != nil {
		return nil, err
	}
	if err := requireMember(a); err != nil {
		return nil, err // a read position is a member's own
	}
	if m.ParentID != nil {
		return nil, store.Invalid("message", "message %s is a reply: give its thread's first message, %s", m.ID, *m.ParentID)
	}
	t, marked, err := s.store.MarkThreadRead(ctx, m.ID, me.UserID)
	if err != nil {
		return nil, err
	}
	if !marked {
		if t.ReplyCount == 0 {
			return nil, store.Invalid("message", "message %s has no replies: it starts no thread", m.ID)
		}
		return t, nil
	}
	counts, err := s.UnreadCounts(ctx, me.UserID)
	if err != nil {
		// Every user event carries the caller's totals: without them, none.
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: thread_read event not published", "err", err)
		return t, nil
	}
	parent := *t.ParentMessage
	parent.Sender = s.profiles(ctx, []string{parent.UserID})[parent.UserID]
	c := parent.ChannelID
	s.publishUserEvents(ctx, []string{me.UserID}, []*UserEvent{{Type: EventNotificationThreadRead, Channel: &c, Message: &parent,
		TotalUnreadCount: counts.TotalUnreadCount, UnreadChannels: counts.UnreadChannels, CreatedAt: *t.LastReadAt}})
	return t, nil
}

// ThreadParticipants reads, per thread (by its parent), the first
// participants the caller may see.
func (s *Service) ThreadParticipants(ctx context.Context, parents []uuid.UUID) ([][]string, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.ThreadParticipants(ctx, me.UserID, parents, ThreadParticipantsShown)
}
