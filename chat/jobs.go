package chat

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

// chatRepairKind compares the Redis unread counters of users whose counts
// changed lately with PostgreSQL and has those that drifted rebuilt.
const chatRepairKind = "chat.repair"

// RegisterJobs gives the workers the chat product's jobs. repairEvery is
// how often the unread repair pass runs, on one node of the cluster (0:
// every minute).
func (s *Service) RegisterJobs(r *workers.Runner, repairEvery time.Duration) {
	r.Handle(store.ChatMessageKind, s.messageJob)
	r.Handle(store.ChatMessageEventKind, s.messageEventJob)
	if repairEvery <= 0 {
		repairEvery = time.Minute
	}
	r.Every(chatRepairKind, repairEvery, func(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
		users, err := tx.RecentlyActiveChatUsers(ctx, time.Now().Add(-10*repairEvery), 1000)
		if err != nil || len(users) == 0 {
			return nil, err
		}
		n, err := s.RepairUnread(ctx, users)
		if err != nil {
			// Redis is away: nothing to compare now.
			s.log.Warn("chat: unread repair skipped", "err", err)
			return nil, nil
		}
		if n > 0 {
			s.log.Warn("chat: unread counters drifted; rebuilding", "users", n)
		}
		return nil, nil
	})
}

// messageJob does what follows a sent message: the unread bookkeeping in
// Redis (idempotent watermarks, so a retry changes nothing; done before
// the commit so a Redis failure retries the job), then, after the commit,
// message.new on the channel's topic and notification.message_new with
// the new totals to every other member.
func (s *Service) messageJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.ChatMessageJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	msg, ch, members, err := messageFacts(ctx, tx, p.MessageID)
	if err != nil || msg == nil {
		return nil, err
	}
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: EventMessageNew, Key: "channel:" + ch.ID, At: msg.CreatedAt,
		Payload: messageHook{Channel: ch.ID, Message: msg}}); err != nil {
		return nil, err
	}
	previewQueued, err := s.queuePreview(ctx, tx, msg)
	if err != nil {
		return nil, err
	}
	big := s.big(ch.MemberCount)
	var notify []string
	var events []*UserEvent
	cid := ch.ID
	// Members who mute the channel, or block or mute the sender, get no
	// notification (their counts leave the message out on their own).
	var silenced map[string]bool
	if msg.Counts() {
		if silenced, err = tx.SilencedBy(ctx, ch.ID, msg.UserID); err != nil {
			return nil, err
		}
	}
	if msg.Counts() && s.push.Enabled() {
		// Offline members hear of it on their devices: the same members
		// the notification goes to, queued with this job (push.Message).
		others := make([]string, 0, len(members))
		for _, u := range members {
			if u != msg.UserID && !silenced[u] {
				others = append(others, u)
			}
		}
		if err := s.push.Message(ctx, tx, msg, ch, others); err != nil {
			return nil, err
		}
	}
	note := func(u string, t store.UnreadTotals) {
		if silenced[u] {
			return
		}
		notify = append(notify, u)
		events = append(events, &UserEvent{Type: EventNotificationMessageNew, Channel: &cid, Message: msg,
			TotalUnreadCount: t.Total, UnreadChannels: t.Channels, CreatedAt: msg.CreatedAt})
	}
	// A sender who is no member (an admin) has no read position: recording
	// one would count the channel's next messages as its unread.
	reader := msg.UserID
	if !slices.Contains(members, reader) {
		reader = ""
	}
	var read *store.ReadPosition
	if reader != "" && msg.Type != store.MessageSystem && !msg.Shadowed {
		if read, err = s.senderRead(ctx, tx, msg, big); err != nil {
			return nil, err
		}
	}
	switch {
	case msg.Type == store.MessageSystem || msg.Shadowed:
		// Counts for nobody, and its author read nothing new (a shadowed
		// message has no sequence number of its own).
	case !msg.Counts():
		// A reply only in its thread counts for nobody; it only moves the
		// sender's read position.
		if read != nil {
			if _, err := s.state.RecordRead(ctx, read); err != nil {
				return nil, err
			}
		}
	case big:
		// Pull: members' counts are computed at read time from this.
		if err := s.state.SetBigChannelSeq(ctx, ch.ID, msg.Seq, read); err != nil {
			return nil, err
		}
	default:
		totals, err := s.state.BumpUnread(ctx, ch.ID, msg.Seq, members, read)
		if err != nil {
			return nil, err
		}
		var unknown []string
		for i, u := range members {
			if u != msg.UserID && !totals[i].Known {
				unknown = append(unknown, u)
			}
		}
		var fromDB map[string]store.UnreadTotals
		if len(unknown) > 0 {
			if fromDB, err = tx.UnreadTotalsFromDB(ctx, unknown); err != nil {
				return nil, err
			}
		}
		for i, u := range members {
			if u == msg.UserID {
				continue
			}
			t := totals[i]
			if !t.Known {
				t = fromDB[u]
			}
			note(u, t)
		}
	}
	return func(ctx context.Context) {
		if previewQueued {
			s.previews.Wake()
		}
		// The request that sent the message has normally published it
		// already; this publishes it if that request's node stopped first.
		if _, err := s.publishMessageNew(ctx, msg, ch.MemberRemovals); err != nil {
			// The job has committed; a durable job publishes it again.
			if _, qerr := s.store.EnqueueJob(ctx, store.ChatMessageEventKind, p); qerr != nil {
				s.log.Error("chat: message.new lost: not published, nor queued to be", "message", p.MessageID, "err", err, "queue_err", qerr)
			} else {
				s.log.Log(ctx, redisguard.LogLevel(err), "chat: message.new not published; queued to be published again", "message", p.MessageID, "err", err)
			}
		}
		if big {
			// Notifications go only to members with an open connection
			// (their presence), with totals from PostgreSQL: nothing is
			// written per member, and a member offline now reads its counts
			// when it comes. After message.new, which they must not delay.
			s.noteOnlineMembers(ctx, members, msg.UserID, note)
		}
		s.publishUserEvents(ctx, notify, events)
	}, nil
}

// messageHook is the payload of the message events webhooks receive.
type messageHook struct {
	Channel string         `json:"channel"`
	Message *store.Message `json:"message"`
	User    string         `json:"user,omitempty"`
}

// senderRead is the read position a message's job records for its
// sender, a member. The request that sent the message recorded it
// already, unless it stopped first; but the sender may have marked the
// channel unread since (markUnread, which discards its counters and
// rebuilds them), and moving the position forwards again over that mark
// would count too few. So the position is the message's, or the one in
// PostgreSQL if lower, read after the counters' generation, and recorded
// only if the counters are still of that generation: a markUnread that
// committed after this read discards them, moving it. Nil when the
// sender is no longer a member.
func (s *Service) senderRead(ctx context.Context, tx *store.Store, msg *store.Message, big bool) (*store.ReadPosition, error) {
	gen, err := s.state.UnreadGen(ctx, msg.UserID)
	if err != nil {
		return nil, err
	}
	seq, err := tx.ReadSeq(ctx, msg.ChannelID, msg.UserID)
	if errors.Is(err, store.ErrNotChannelMember) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &store.ReadPosition{ChannelID: msg.ChannelID, UserID: msg.UserID, Seq: min(msg.Seq, seq), Big: big, Gen: gen}, nil
}

// noteOnlineMembers calls note with the totals of each member but the
// sender that has an open connection. It runs after the job's commit, so
// a failure only costs the notifications (logged): the counts stay right,
// read on demand.
func (s *Service) noteOnlineMembers(ctx context.Context, members []string, sender string, note func(string, store.UnreadTotals)) {
	others := make([]string, 0, len(members))
	for _, u := range members {
		if u != sender {
			others = append(others, u)
		}
	}
	online, err := s.state.Online(ctx, others)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: presence for notifications", "err", err)
		return
	}
	var live []string
	for i, u := range others {
		if online[i] {
			live = append(live, u)
		}
	}
	if len(live) == 0 {
		return
	}
	totals, err := s.store.UnreadTotalsFromDB(ctx, live)
	if err != nil {
		s.log.Warn("chat: totals for notifications", "err", err)
		return
	}
	for _, u := range live {
		note(u, totals[u])
	}
}

// messageEventJob publishes a message's message.new event again (see
// store.ChatMessageEventKind). A failure fails the job, which retries with
// backoff until Redis takes the event; subscribers that already have the
// message (read from PostgreSQL meanwhile) ignore it.
func (s *Service) messageEventJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.ChatMessageJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	msg, ch, _, err := messageFacts(ctx, tx, p.MessageID)
	if err != nil || msg == nil {
		return nil, err
	}
	// The job holds its batch's transaction: while Redis is away, fail
	// fast and retry later rather than wait out the client's timeouts.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = s.publishMessageNew(pctx, msg, ch.MemberRemovals)
	return nil, err
}

// messageFacts loads a sent message as its message.new event carries it
// (with its sender, and no reactions yet), its channel and the channel's
// members. A message deleted since is nil.
func messageFacts(ctx context.Context, tx *store.Store, id uuid.UUID) (*store.Message, *store.Channel, []string, error) {
	msg, ch, members, err := tx.ChatMessageFacts(ctx, id)
	if err != nil || msg == nil {
		return nil, nil, nil, err
	}
	msg.Reactions = []store.ReactionCount{}
	return msg, ch, members, nil
}
