package chat_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/store"
)

// Notifications that share a message encode it once; each must still read
// back exactly as encoding/json's encoding of the same event.
func TestUserEventsEncodeAsJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 30, 0, 123456789, time.UTC)
	channel := "messaging:général"
	parent := uuid.New()
	name := "Ana"
	first := &store.Message{ID: uuid.New(), ChannelID: channel, Seq: 7, UserID: "ana", Text: "héllo \"quoted\" <b>\u2028",
		Type: store.MessageRegular, MentionedUserIDs: []string{"bo"}, Data: json.RawMessage(`{"a": [1, 2]}`), CreatedAt: at, UpdatedAt: at,
		Sender: &store.User{ID: "ana", Name: &name}}
	second := &store.Message{ID: uuid.New(), ChannelID: channel, UserID: "bo", Text: "reply", Type: store.MessageReply, ParentID: &parent, CreatedAt: at, UpdatedAt: at}
	evs := []*chat.UserEvent{
		{Type: chat.EventNotificationMessageNew, Channel: &channel, Message: first, TotalUnreadCount: 3, UnreadChannels: 1, CreatedAt: at},
		{Type: chat.EventNotificationMessageNew, Channel: &channel, Message: first, TotalUnreadCount: 40, UnreadChannels: 12, CreatedAt: at},
		{Type: chat.EventNotificationMessageNew, Channel: &channel, Message: second, CreatedAt: at},
		{Type: chat.EventNotificationMarkRead, CreatedAt: at},
		{Type: chat.EventNotificationMessageNew, Channel: &channel, Message: first, TotalUnreadCount: 1, UnreadChannels: 1, CreatedAt: at},
	}
	got, err := chat.EncodeUserEvents(evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(got[i], &a); err != nil {
			t.Fatalf("event %d: %v in %s", i, err, got[i])
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
}
