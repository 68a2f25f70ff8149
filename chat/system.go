package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// System messages record changes to a channel in its history: who joined,
// left, was added or removed, got a role; a freeze. They are written in the
// transaction of the change, count as unread for nobody, and reach
// messageAdded like any message. Livestream channels record no joins and
// leaves: thousands of viewers would bury the conversation.

// systemMessageJobDelay is how long a system message's job waits before it
// publishes the message itself (see systemChange): long enough for the
// change's own request to have published it, in which case the job only
// finds it published.
const systemMessageJobDelay = 2 * time.Second

// systemEvent describes a change for its system message.
type systemEvent struct {
	typ   string
	actor string
	users []string
	role  string
}

// systemChange runs change in a transaction with the system message that
// records it and the change's webhook event, then after (the change's own events, which a removed
// member must get before the message that its subscriptions refuse), then
// publishes the message. change returns what it did and its event (nil:
// no message).
func (s *Service) systemChange(ctx context.Context, channel string, change func(tx *store.Store) (*store.MemberChange, *systemEvent, error), after func(*store.MemberChange)) (*store.MemberChange, error) {
	var out *store.MemberChange
	var msg *store.Message
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		out, msg = nil, nil
		ch, ev, err := change(tx)
		if err != nil || ev == nil {
			out = ch
			return err
		}
		hook := channelHook{User: ev.actor, Members: ev.users, Role: ev.role}
		if ev.typ == EventChannelFrozen || ev.typ == EventChannelUnfrozen {
			hook.Info = infoOf(ch.Channel)
		}
		if err := s.emit(ctx, tx, ev.typ, channel, hook); err != nil {
			return err
		}
		if ev.typ == EventMemberJoined || ev.typ == EventMemberLeft {
			if ch.Channel.Type == store.ChannelLivestream {
				out = ch
				return nil
			}
		}
		people, err := tx.UsersByID(ctx, append([]string{ev.actor}, ev.users...))
		if err != nil {
			return err
		}
		sm := describe(ev, people)
		// The request publishes the change's events before the message,
		// so that a removed subscriber gets its own member.removed before
		// the message that ends its stream; a worker of any node that
		// claimed the job at once could publish the message first.
		sm.PublishAt = time.Now().Add(systemMessageJobDelay)
		if msg, err = tx.AddSystemMessage(ctx, channel, sm); err != nil {
			return err
		}
		msg.Sender = people[0]
		out = ch
		return nil
	})
	if err != nil {
		return nil, err
	}
	if after != nil && out != nil {
		after(out)
	}
	if msg != nil {
		if err := s.publishSent(ctx, msg); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "chat: publish a system message; its job will", "message", msg.ID, "err", err)
		}
		workers.Wake(ctx, s.bus)
	}
	return out, nil
}

// describe writes a change's system message: English text, and data that
// says what happened for apps that write their own.
func describe(ev *systemEvent, people []*store.User) store.SystemMessage {
	name := func(i int) string {
		if u := people[i]; u != nil && u.Name != nil && *u.Name != "" {
			return *u.Name
		}
		if i == 0 {
			return ev.actor
		}
		return ev.users[i-1]
	}
	names := make([]string, len(ev.users))
	for i := range ev.users {
		names[i] = name(i + 1)
	}
	var text string
	switch ev.typ {
	case EventMemberAdded:
		text = fmt.Sprintf("%s added %s", name(0), list(names))
	case EventMemberRemoved:
		text = fmt.Sprintf("%s removed %s", name(0), list(names))
	case EventMemberJoined:
		text = fmt.Sprintf("%s joined", list(names))
	case EventMemberLeft:
		text = fmt.Sprintf("%s left", list(names))
	case EventMemberRole:
		article := "a "
		if ev.role == store.ChannelRoleOwner {
			article = "an "
		}
		text = fmt.Sprintf("%s made %s %s%s", name(0), list(names), article, ev.role)
	case EventChannelFrozen:
		text = fmt.Sprintf("%s froze the channel", name(0))
	case EventChannelUnfrozen:
		text = fmt.Sprintf("%s unfroze the channel", name(0))
	default:
		text = fmt.Sprintf("%s: %s", name(0), ev.typ)
	}
	data, _ := json.Marshal(struct {
		Event string   `json:"event"`
		Actor string   `json:"actor"`
		Users []string `json:"users,omitempty"`
		Role  string   `json:"role,omitempty"`
	}{ev.typ, ev.actor, ev.users, ev.role})
	return store.SystemMessage{Actor: ev.actor, Text: text, Data: data}
}

// list joins names as a sentence does: "a", "a and b", "a, b and c", or
// "a, b and 3 others".
func list(names []string) string {
	switch n := len(names); {
	case n == 0:
		return ""
	case n == 1:
		return names[0]
	case n <= 3:
		return strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	default:
		return fmt.Sprintf("%s, %s and %d others", names[0], names[1], n-2)
	}
}
