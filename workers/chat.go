package workers

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// chatRepairKind compares the Redis unread counters of users whose counts
// changed lately with PostgreSQL and has those that drifted rebuilt.
const chatRepairKind = "chat.repair"

// registerChat registers the background jobs of the chat product.
func (r *Runner) registerChat() {
	r.Handle(store.ChatMessageKind, r.chatMessage)
	r.Handle(store.ChatMessageEventKind, r.chatMessageEvent)
	interval := r.opts.ChatRepairInterval
	if interval <= 0 {
		interval = time.Minute
	}
	r.Every(chatRepairKind, interval, func(ctx context.Context, tx pgx.Tx, _ store.Job) (func(context.Context), error) {
		users, err := r.store.RecentlyActiveChatUsers(ctx, tx, time.Now().Add(-10*interval), 1000)
		if err != nil || len(users) == 0 {
			return nil, err
		}
		n, err := r.store.RepairUnread(ctx, users)
		if err != nil {
			// Redis is away: nothing to compare now.
			r.log.Warn("chat: unread repair skipped", "err", err)
			return nil, nil
		}
		if n > 0 {
			r.log.Warn("chat: unread counters drifted; rebuilding", "users", n)
		}
		return nil, nil
	})
}

// chatMessage does what follows a sent message: the unread bookkeeping in
// Redis (idempotent watermarks, so a retry changes nothing; done before
// the commit so a Redis failure retries the job), then, after the commit,
// message.new on the channel's topic and notification.message_new with
// the new totals to every other member.
func (r *Runner) chatMessage(ctx context.Context, tx pgx.Tx, job store.Job) (func(context.Context), error) {
	var p store.ChatMessageJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	msg, ch, members, err := r.messageFacts(ctx, tx, p.MessageID)
	if err != nil || msg == nil {
		return nil, err
	}
	big := ch.MemberCount > r.store.ChatPushMemberLimit()
	var notify []string
	var events []*store.UserEvent
	cid := ch.ID
	note := func(u string, t store.UnreadTotals) {
		notify = append(notify, u)
		events = append(events, &store.UserEvent{Type: store.EventNotificationMessageNew, Channel: &cid, Message: msg,
			TotalUnreadCount: t.Total, UnreadChannels: t.Channels, CreatedAt: msg.CreatedAt})
	}
	// A sender who is no member (an admin) has no read position: recording
	// one would count the channel's next messages as its unread.
	reader := msg.UserID
	if !slices.Contains(members, reader) {
		reader = ""
	}
	switch {
	case msg.ParentID != nil:
		// A reply counts for nobody; it only moves the sender's read position.
		if reader != "" {
			if _, err := r.store.RecordRead(ctx, &store.ReadPosition{ChannelID: ch.ID, UserID: reader, Seq: msg.Seq, Big: big}); err != nil {
				return nil, err
			}
		}
	case big:
		// Pull: members' counts are computed at read time from this.
		if err := r.store.SetBigChannelSeq(ctx, ch.ID, msg.Seq, reader); err != nil {
			return nil, err
		}
	default:
		totals, err := r.store.BumpUnread(ctx, ch.ID, msg.Seq, members, msg.UserID)
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
			if fromDB, err = r.store.UnreadTotalsFromDB(ctx, tx, unknown); err != nil {
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
		// The request that sent the message has normally published it
		// already; this publishes it if that request's node stopped first.
		if _, err := r.store.PublishMessageNew(ctx, r.bus, msg, ch.MemberRemovals); err != nil {
			// The job has committed; a durable job publishes it again.
			if _, qerr := store.EnqueueJob(ctx, r.store.DB(), store.ChatMessageEventKind, p); qerr != nil {
				r.log.Error("chat: message.new lost: not published, nor queued to be", "message", p.MessageID, "err", err, "queue_err", qerr)
			} else {
				r.log.Log(ctx, redisguard.LogLevel(err), "chat: message.new not published; queued to be published again", "message", p.MessageID, "err", err)
			}
		}
		if big {
			// Notifications go only to members with an open connection
			// (their presence), with totals from PostgreSQL: nothing is
			// written per member, and a member offline now reads its counts
			// when it comes. After message.new, which they must not delay.
			r.noteOnlineMembers(ctx, members, msg.UserID, note)
		}
		r.store.PublishUserEvents(ctx, r.bus, notify, events)
	}, nil
}

// noteOnlineMembers calls note with the totals of each member but the
// sender that has an open connection. It runs after the job's commit, so
// a failure only costs the notifications (logged): the counts stay right,
// read on demand.
func (r *Runner) noteOnlineMembers(ctx context.Context, members []string, sender string, note func(string, store.UnreadTotals)) {
	others := make([]string, 0, len(members))
	for _, u := range members {
		if u != sender {
			others = append(others, u)
		}
	}
	online, err := r.store.Online(ctx, others)
	if err != nil {
		r.log.Log(ctx, redisguard.LogLevel(err), "chat: presence for notifications", "err", err)
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
	totals, err := r.store.UnreadTotalsFromDB(ctx, r.store.DB(), live)
	if err != nil {
		r.log.Warn("chat: totals for notifications", "err", err)
		return
	}
	for _, u := range live {
		note(u, totals[u])
	}
}

// chatMessageEvent publishes a message's message.new event again (see
// store.ChatMessageEventKind). A failure fails the job, which retries with
// backoff until Redis takes the event; subscribers that already have the
// message (read from PostgreSQL meanwhile) ignore it.
func (r *Runner) chatMessageEvent(ctx context.Context, tx pgx.Tx, job store.Job) (func(context.Context), error) {
	var p store.ChatMessageJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	msg, ch, _, err := r.messageFacts(ctx, tx, p.MessageID)
	if err != nil || msg == nil {
		return nil, err
	}
	// The job holds its batch's transaction: while Redis is away, fail
	// fast and retry later rather than wait out the client's timeouts.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = r.store.PublishMessageNew(pctx, r.bus, msg, ch.MemberRemovals)
	return nil, err
}

// messageFacts loads a sent message as its message.new event carries it
// (with its sender, and no reactions yet), its channel and the channel's
// members. A message deleted since is nil.
func (r *Runner) messageFacts(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*store.Message, *store.Channel, []string, error) {
	msg, ch, members, err := store.ChatMessageFacts(ctx, tx, id)
	if err != nil || msg == nil {
		return nil, nil, nil, err
	}
	msg.Reactions = []store.ReactionCount{}
	return msg, ch, members, nil
}
