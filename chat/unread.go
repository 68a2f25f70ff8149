package chat

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// UnreadCounts returns a user's unread counts: from Redis in one round
// trip; when the user's counters are incomplete, from PostgreSQL, which
// also rebuilds them; and while Redis is unreachable, from PostgreSQL.
func (s *Service) UnreadCounts(ctx context.Context, user string) (*store.UnreadCounts, error) {
	if err := s.state.SettleUnread(ctx); err != nil {
		return s.store.UnreadCountsFromDB(ctx, user)
	}
	counts, complete, gen, err := s.state.ReadUnread(ctx, user)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: unread counts from PostgreSQL: redis failed", "err", err)
		return s.store.UnreadCountsFromDB(ctx, user)
	}
	if complete {
		out := &store.UnreadCounts{Channels: make([]*store.ChannelUnread, len(counts))}
		for i := range counts {
			out.Channels[i] = &counts[i]
		}
		store.FinishCounts(out)
		return out, nil
	}
	// A user who blocks or mutes anyone, or mutes a channel, is counted
	// here every time: Redis counters count every message. A silence that
	// starts after this read invalidates the counters (a new gen), so the
	// rebuild below, against the gen read before, is refused; one that
	// ends meanwhile costs one more read here.
	silences, err := s.store.Silences(ctx, user)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.UnreadRows(ctx, user, silences)
	if err != nil {
		return nil, err
	}
	if silences {
		return store.CountsFromRows(user, rows), nil
	}
	if err := s.state.RebuildUnread(ctx, user, gen, rows, s.pushLimit); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: rebuild unread counters", "user", user, "err", err)
	}
	return store.CountsFromRows(user, rows), nil
}

// RepairUnread compares users' Redis counters with PostgreSQL and
// discards those that differ, so their next read rebuilds them. It
// returns how many it discarded. Counters still waiting for a queued
// job look different too; rebuilding them is harmless.
func (s *Service) RepairUnread(ctx context.Context, users []string) (int, error) {
	if err := s.state.SettleUnread(ctx); err != nil {
		return 0, fmt.Errorf("chat: repair unread: %w", err)
	}
	var bad []string
	for _, u := range users {
		counts, complete, _, err := s.state.ReadUnread(ctx, u)
		if err != nil {
			return 0, fmt.Errorf("chat: repair unread: %w", err)
		}
		if !complete {
			continue // already rebuilt on the next read
		}
		truth, err := s.store.UnreadCountsFromDB(ctx, u)
		if err != nil {
			return 0, err
		}
		got := map[string]int64{}
		for _, c := range counts {
			got[c.ChannelID] = int64(c.UnreadCount)
		}
		same := len(got) == len(truth.Channels)
		for _, c := range truth.Channels {
			if got[c.ChannelID] != int64(c.UnreadCount) {
				same = false
			}
		}
		if !same {
			bad = append(bad, u)
		}
	}
	if err := s.state.DiscardUnread(ctx, bad); err != nil {
		return 0, err
	}
	return len(bad), nil
}

// discardScript drops a user's counters and watermarks but keeps the
// generation, bumped, so a rebuild that read PostgreSQL before this does

// MyUnreadCounts returns the caller's unread counts across all its
// channels. When the response will open the channels (withChannels), those
// the caller may no longer read are left out, and so is their share of the
// totals: a counter Redis still holds for a channel the caller was removed
// from (removals clear the counters, but a write racing the removal can
// put one back until a rebuild or the repair pass) must not open that
// channel's profile and history. Without them, an entry is an id and a
// number, and the read stays one Redis round trip. lookup reads channels
// and the caller's memberships (the request's dataloaders).
func (s *Service) MyUnreadCounts(ctx context.Context, withChannels bool, lookup Lookup) (*store.UnreadCounts, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.UnreadCounts(ctx, me.UserID)
	if err != nil || !withChannels {
		return counts, err
	}
	return readable(ctx, me, counts, lookup)
}

// Lookup reads channels and the caller's memberships in them, by id (nil
// where there is none): a request's dataloaders, so that what the service
// reads is there for the response's fields.
type Lookup interface {
	Channels(ctx context.Context, ids []string) ([]*store.Channel, error)
	MyMemberships(ctx context.Context, ids []string) ([]*store.Member, error)
}

func readable(ctx context.Context, me auth.Identity, counts *store.UnreadCounts, lookup Lookup) (*store.UnreadCounts, error) {
	if len(counts.Channels) == 0 {
		return counts, nil
	}
	ids := make([]string, len(counts.Channels))
	for i, c := range counts.Channels {
		ids[i] = c.ChannelID
	}
	channels, err := lookup.Channels(ctx, ids)
	if err != nil {
		return nil, err
	}
	members, err := lookup.MyMemberships(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := *counts
	out.Channels = make([]*store.ChannelUnread, 0, len(ids))
	for i, c := range counts.Channels {
		if channels[i] != nil {
			a := &store.ChannelAccess{Channel: channels[i]}
			if members[i] != nil {
				a.Role = members[i].Role
			}
			if CanRead(a, me) {
				out.Channels = append(out.Channels, c)
				continue
			}
		}
		// Nor does the channel count in the totals.
		out.TotalUnreadCount = max(0, out.TotalUnreadCount-c.UnreadCount)
		if c.UnreadCount > 0 {
			out.UnreadChannels = max(0, out.UnreadChannels-1)
		}
	}
	return &out, nil
}

// MarkRead marks a channel read up to a message (default: the newest) for
// the caller, a member; a read position never moves backwards.
func (s *Service) MarkRead(ctx context.Context, channel string, message *string) (*store.ChannelUnread, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireMember(a); err != nil {
		return nil, err
	}
	var msgID *uuid.UUID
	if message != nil {
		id, err := store.ParseID("message", *message)
		if err != nil {
			return nil, err
		}
		msgID = &id
	}
	p, err := s.store.MarkRead(ctx, channel, me.UserID, msgID)
	if err != nil {
		return nil, err
	}
	p.Big = s.big(p.Members)
	totals, err := s.state.RecordRead(ctx, p)
	if err != nil {
		// RecordRead invalidated the counters it could not write.
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: record read in redis", "err", err)
	}
	if !totals.Known {
		if all, err := s.store.UnreadTotalsFromDB(ctx, []string{me.UserID}); err == nil {
			totals = all[me.UserID]
		}
	}
	var readMsg *store.Message
	if p.MessageID != nil {
		readMsg = &store.Message{ID: *p.MessageID, ChannelID: channel}
		if m, err := s.store.Message(ctx, *p.MessageID); err == nil {
			readMsg = m
		}
	}
	s.publishChannel(ctx, EventMessageRead, channel, me.UserID, readMsg)
	c := channel
	s.publishUserEvents(ctx, []string{me.UserID}, []*UserEvent{{Type: EventNotificationMarkRead, Channel: &c,
		TotalUnreadCount: totals.Total, UnreadChannels: totals.Channels, CreatedAt: p.At}})
	return &store.ChannelUnread{ChannelID: channel, UserID: me.UserID, UnreadCount: p.Unread, ReadAt: &p.At}, nil
}

// MarkAllRead marks every channel of the caller read.
func (s *Service) MarkAllRead(ctx context.Context, withChannels bool, lookup Lookup) (*store.UnreadCounts, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.store.MarkAllRead(ctx, me.UserID); err != nil {
		return nil, err
	}
	if err := s.state.InvalidateUnread(ctx, []string{me.UserID}); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "err", err)
	}
	counts, err := s.UnreadCounts(ctx, me.UserID)
	if err != nil {
		return nil, err
	}
	s.publishUserEvents(ctx, []string{me.UserID}, []*UserEvent{{Type: EventNotificationMarkRead,
		TotalUnreadCount: counts.TotalUnreadCount, UnreadChannels: counts.UnreadChannels, CreatedAt: time.Now().UTC()}})
	if !withChannels {
		return counts, nil
	}
	return readable(ctx, me, counts, lookup)
}
