package chat

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// replayPage is how many stored messages messageAdded reads at a time.
const replayPage = 100

// reorderWait is how long messageAdded holds a live message that arrived
// ahead of its predecessor before reading the missing positions from
// PostgreSQL. Positions commit in order, so a missing one is committed and
// its event is normally a moment behind (outbox jobs publish concurrently):
// waiting for it costs no query, where reading at once would cost one per
// subscriber of the channel.
const reorderWait = 100 * time.Millisecond

// reorderMax bounds the live messages held while waiting.
const reorderMax = 64

// streamMessages delivers a channel's messages after position last: first
// the stored ones, then live ones, deduplicated by position. A live
// message past the next expected position is held until the missing ones
// arrive; if they have not come within reorderWait, or after a gap in the
// bus, the missing positions are read from PostgreSQL, so nothing is
// skipped or repeated whatever the bus does.
//
// The stream ends with FORBIDDEN when the subscriber is removed from a
// channel it may then no longer read.
func (s *Service) streamMessages(ctx context.Context, channel string, guard *readGuard, last int64,
	sub *bus.Subscription, out *stream.Out[store.Message]) {
	ms := &messageStream{s: s, ctx: ctx, channel: channel, guard: guard, last: last, sub: sub, out: out}
	if !ms.catchUp(math.MaxInt64, true) {
		ms.Stop()
		return
	}
	stream.Follow(sub, ms)
}

// messageStream is the state of one messageAdded stream (see
// streamMessages): one object, where closures over the same variables
// were a dozen, and an idle subscription holds it for hours.
type messageStream struct {
	s       *Service
	ctx     context.Context
	channel string
	guard   *readGuard
	// last is the position of the last message delivered.
	last int64
	sub  *bus.Subscription
	out  *stream.Out[store.Message]
	// held are live messages past last+1, by position, waiting for the
	// ones before them.
	held  map[int64]*store.Message
	wait  *time.Timer
	waitC <-chan time.Time
}

// Stop closes the stream, then the bus subscription: its client hears of
// the end without waiting for the bus (which may write to Redis).
func (s *messageStream) Stop() {
	s.out.Close()
	s.sub.Close()
}

// CanPark: held messages wait on the reorder timer, not on the bus.
func (s *messageStream) CanPark() bool { return s.waitC == nil }

func (s *messageStream) send(m *store.Message) bool {
	if !s.guard.delivers(m) {
		s.last = m.Pos // invisible to the viewer: its position, not its text
		return true
	}
	if !s.out.Send(s.ctx, m) {
		return false
	}
	s.last = m.Pos
	return true
}

// catchUp reads from PostgreSQL and delivers the messages after last up
// to upTo; starting: what the stream missed before it went live.
func (s *messageStream) catchUp(upTo int64, starting bool) bool {
	confirmed := false
	for page := 0; ; page++ {
		msgs, led, err := s.s.messagesAfter(s.ctx, s.channel, s.last, upTo)
		if replayPageRead != nil {
			replayPageRead(s.channel, page)
		}
		if err == nil && len(msgs) > 0 && (starting || page > 0) {
			// The member may have been removed since the check its
			// subscription began with, and these messages sent after:
			// while it subscribed (the removal's event came before its
			// bus subscription), or during a long replay to a slow client.
			// (Live, the guard sees removals in the events.)
			err = s.guard.recheck(s.ctx)
		}
		if err != nil {
			if s.ctx.Err() == nil {
				stream.End(s.ctx, err)
			}
			return false
		}
		for _, m := range msgs {
			if m.Pos > s.last && !s.send(m) {
				return false
			}
		}
		if len(msgs) < replayPage {
			// The last page must come from a query that began after the
			// stream's bus subscription did: one this stream joined may
			// have begun before, and missed a message whose event came
			// before the subscription too. One more read is such a query
			// (a read started after the joined one ended).
			if led || confirmed {
				return true
			}
			confirmed = true
		}
	}
}

// release sends the held messages that now follow last and forgets those
// already sent.
func (s *messageStream) release() bool {
	for len(s.held) > 0 {
		m, ok := s.held[s.last+1]
		if !ok {
			break
		}
		delete(s.held, m.Pos)
		if !s.send(m) {
			return false
		}
	}
	for pos := range s.held {
		if pos <= s.last {
			delete(s.held, pos)
		}
	}
	if len(s.held) == 0 && s.waitC != nil {
		s.wait.Stop()
		s.waitC = nil
	}
	return true
}

// fill reads from PostgreSQL everything up to the newest held message.
func (s *messageStream) fill() bool {
	upTo := s.last
	for pos := range s.held {
		upTo = max(upTo, pos)
	}
	return s.catchUp(upTo, false) && s.release()
}

// Next handles one event, or the end of the reorder wait; false: the
// stream has ended.
func (s *messageStream) Next() bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-s.waitC:
		s.waitC = nil
		if !s.fill() {
			return false
		}
	case ev, ok := <-s.sub.Events():
		if !ok {
			stream.End(s.ctx, s.sub.Err())
			return false
		}
		if ev.Gap {
			// A removal may have been missed with the other events.
			if err := s.guard.check(s.ctx, nil); err != nil {
				stream.End(s.ctx, err)
				return false
			}
			return s.catchUp(math.MaxInt64, false) && s.release()
		}
		e, err := decodeChannelEvent(ev.Data)
		if err != nil {
			return true
		}
		if err := s.guard.check(s.ctx, e); err != nil {
			stream.End(s.ctx, err)
			return false
		}
		if e.Type != EventMessageNew || e.Message == nil {
			return true
		}
		return s.live(e.Message)
	}
	return true
}

// live handles a message that came over the bus.
func (s *messageStream) live(m *store.Message) bool {
	switch {
	case m.Pos <= s.last:
	case m.Pos == s.last+1:
		return s.send(m) && s.release()
	default:
		if s.held == nil {
			s.held = map[int64]*store.Message{}
		}
		s.held[m.Pos] = m
		if len(s.held) > reorderMax {
			return s.fill()
		}
		if s.waitC == nil {
			if s.wait == nil {
				s.wait = time.NewTimer(reorderWait)
			} else {
				s.wait.Reset(reorderWait)
			}
			s.waitC = s.wait.C
		}
	}
	return true
}

// replayPageRead, when set (by tests), runs after messageAdded's replay
// has read a page (counted from 0) and before it delivers it.
var replayPageRead func(channel string, page int)

// replayQuery, when set (by tests), runs as a stream asks for a page
// (queried false) and in the query it began or joined, once it has read
// (queried true).
var replayQuery func(channel string, queried bool)

// messagesAfter reads a page of a channel's messages after a position for
// messageAdded. Subscribers of the same channel that miss the same
// positions at the same moment (all of them, when the bus reconnects) share
// one query: the messages are read-only.
// led is false when the caller joined a query another caller had begun.
func (s *Service) messagesAfter(ctx context.Context, channel string, after, upTo int64) (msgs []*store.Message, led bool, err error) {
	key := channel + "\x00" + strconv.FormatInt(after, 10) + "\x00" + strconv.FormatInt(upTo, 10)
	if replayQuery != nil {
		replayQuery(channel, false)
	}
	ch := s.replays.DoChan(key, func() (any, error) {
		led = true // runs for the caller that begins the query only
		// Not the caller's context: the query outlives a caller that leaves
		// while others wait for it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		msgs, err := s.store.MessagesAfter(qctx, channel, after, upTo, replayPage)
		if err == nil {
			s.fillReplayed(qctx, msgs)
		}
		if replayQuery != nil {
			replayQuery(channel, true)
		}
		return msgs, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, led, res.Err
		}
		return res.Val.([]*store.Message), led, nil
	case <-ctx.Done():
		return nil, false, ctx.Err() // led is the query's to write until it ends
	}
}

// fillReplayed gives a page of replayed messages their authors and
// reaction counts, as live messages carry them in their events: each
// message of a replay is a response of its own, whose loaders would wait
// and query for each one (a few hundred messages a second at most, and
// a long resume on a busy channel outlasted its bus buffer). Best effort:
// what is missing is loaded as before.
func (s *Service) fillReplayed(ctx context.Context, msgs []*store.Message) {
	if len(msgs) == 0 {
		return
	}
	ids := make([]uuid.UUID, len(msgs))
	var users []string
	for i, m := range msgs {
		ids[i] = m.ID
		if !slices.Contains(users, m.UserID) {
			users = append(users, m.UserID)
		}
	}
	if found, err := s.store.UsersByID(ctx, users); err == nil {
		for _, m := range msgs {
			if i := slices.Index(users, m.UserID); found[i] != nil {
				m.Sender = found[i]
			}
		}
	}
	if counts, err := s.store.MessageReactionCounts(ctx, ids); err == nil {
		for i, m := range msgs {
			m.Reactions = counts[i]
			if m.Reactions == nil {
				m.Reactions = []store.ReactionCount{}
			}
		}
	}
}

// MessageAdded streams a channel's new messages (thread replies included),
// in order, to a reader of the channel. With after (a message id) it first
// replays the stored messages sent after it, then continues live: no gap,
// no duplicate. It ends with FORBIDDEN when the subscriber is removed from
// a channel it may then no longer read.
func (s *Service) MessageAdded(ctx context.Context, channel string, after *string) (<-chan *store.Message, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireRead(a, me); err != nil {
		return nil, err
	}
	var afterID *uuid.UUID
	if after != nil {
		id, err := store.ParseID("after", *after)
		if err != nil {
			return nil, err
		}
		afterID = &id
	}
	// The stream keeps its context for its life (stream.Context).
	ctx = stream.Context(ctx)
	// Subscribe first, then read where to start: nothing sent in between is missed.
	sub, err := s.bus.SubscribeParked(ctx, ChannelTopic(channel))
	if err != nil {
		return nil, err
	}
	var last int64
	if afterID != nil {
		m, err := s.store.Message(ctx, *afterID)
		if err == nil && m.ChannelID != channel {
			err = store.NotFound("message in channel "+channel, *after)
		}
		if err != nil {
			sub.Close()
			return nil, err
		}
		last = m.Pos
	} else {
		now, err := s.store.ChannelForUser(ctx, channel, me.UserID)
		if err != nil {
			sub.Close()
			return nil, err
		}
		last = now.Channel.LastPos
	}
	out := stream.New[store.Message](ctx)
	go s.streamMessages(ctx, channel, s.newReadGuard(ctx, a, me), last, sub, out)
	return out.C, nil
}
