package main

import (
	"errors"
	"strings"
	"testing"
)

// TestRTEndingsTellEndedFromLost feeds the round trip's counters the frames
// a server sends: a subscriber ended by an error frame at start-up, one by
// a drop after the first post, one live that missed an event.
func TestRTEndingsTellEndedFromLost(t *testing.T) {
	var e rtEndings
	failed, dropped, live := &rtSubscriber{user: "u1"}, &rtSubscriber{user: "u2"}, &rtSubscriber{user: "u3"}
	refused := &rtSubscriber{user: "u4"}
	// gqlgen ends a subscription whose resolver failed with a next frame
	// carrying the errors, then a complete.
	if !e.frame(refused, []byte(`{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"redis unavailable","extensions":{"code":"UNAVAILABLE"}}]}}`)) ||
		!e.frame(refused, []byte(`{"id":"1","type":"complete"}`)) || !refused.retryable() {
		t.Fatal("a next frame with errors did not end the subscription, retryable")
	}
	if !e.frame(failed, []byte(`{"id":"1","type":"error","payload":[{"message":"the service is briefly unavailable","extensions":{"code":"UNAVAILABLE"}}]}`)) {
		t.Fatal("an error frame did not end the subscription")
	}
	e.closed(failed, errors.New("EOF")) // the same subscriber: counted once
	e.next.Store(2)
	dropped.got.Add(1)
	e.closed(dropped, errors.New("websocket: close 1006 (abnormal closure): unexpected EOF"))
	live.got.Add(2)
	if e.frame(live, []byte(`{"type":"pong"}`)) {
		t.Fatal("a pong ended the subscription")
	}
	e.closing.Store(true)
	e.closed(live, errors.New("use of closed network connection")) // the bench's own close

	tl := tally([]*rtSubscriber{failed, dropped, live, refused}, 3)
	if tl.received != 3 || tl.expected != 12 || tl.endedSubs != 3 || tl.endedAtStartup != 2 || tl.missedByEnded != 8 || tl.missedByLive != 1 {
		t.Fatalf("tally = %+v", tl)
	}
	sum := e.summary()
	for _, want := range []string{`error frame UNAVAILABLE: 1 subscribers (1 at start-up`, `"the service is briefly unavailable"`,
		`connection dropped: 1 subscribers (0 at start-up`, `next frame with errors UNAVAILABLE: 1 subscribers (1 at start-up`} {
		if !strings.Contains(sum, want) {
			t.Fatalf("summary %q lacks %q", sum, want)
		}
	}
}
