package calls_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/store"
)

func callEventSamples() []*calls.CallEvent {
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC)
	left := at.Add(time.Minute)
	reason := store.CallLeftTimeout
	p := &store.CallParticipant{ID: uuid.New(), SessionID: uuid.New(), CallID: "default:standup", UserID: "alice", JoinedAt: at}
	gone := *p
	gone.LeftAt = &left
	return []*calls.CallEvent{
		{Type: calls.EventJoined, Call: p.CallID, Session: p.SessionID, Participant: p, CreatedAt: at},
		{Type: calls.EventLeft, Call: p.CallID, Session: p.SessionID, Participant: &gone, Reason: &reason, CreatedAt: left},
		{Type: calls.EventSessionEnded, Call: p.CallID, Session: p.SessionID, CreatedAt: left},
		{Type: calls.EventSignal, Call: p.CallID, Session: p.SessionID, CreatedAt: at, Signal: &calls.Signal{
			ID: uuid.New(), From: p, To: uuid.New(), Kind: calls.SignalAnswer, Payload: strings.Repeat("v=0\r\nö", 9000), SentAt: at}},
	}
}

// Call events survive the bus encoding exactly, in the binary form and in
// the JSON form an older or newer node might send.
func TestCallEventCodec(t *testing.T) {
	for _, ev := range callEventSamples() {
		data, err := calls.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := calls.DecodeEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("binary round trip of %s:\n got %+v\nwant %+v", ev.Type, got, ev)
		}
		js, _ := json.Marshal(ev)
		if got, err = calls.DecodeEvent(js); err != nil || !reflect.DeepEqual(got, ev) {
			t.Fatalf("JSON form of %s: %+v, %v", ev.Type, got, err)
		}
		// Every truncation is an error, never a panic or a wrong event.
		for n := 0; n < len(data) && n < 400; n++ {
			if _, err := calls.DecodeEvent(data[:n]); err == nil {
				t.Fatalf("%s truncated to %d bytes decoded", ev.Type, n)
			}
		}
	}
}

func TestCallTopics(t *testing.T) {
	id := uuid.New()
	if got := calls.ParticipantTopic(id); got != "call:p:"+id.String() {
		t.Fatal(got)
	}
	if got := calls.SessionTopic(id); got != "call:s:"+id.String() {
		t.Fatal(got)
	}
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	if got := calls.DecodeLeft(calls.EncodeLeft(ids)); !reflect.DeepEqual(got, ids) {
		t.Fatal(got)
	}
}
