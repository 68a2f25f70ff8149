package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
)

// A participant that leaves while its facts are being read back from
// PostgreSQL (Redis had lost them) is not put back into Redis as live:
// the signaling path would otherwise take it for a participant in the call
// until the facts expired.
func TestFactsOfAParticipantLeavingDuringTheirRestoreAreDropped(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	user := "facts-" + store.NewID().String()[:8]
	if err := s.TouchUser(ctx, user, "user"); err != nil {
		t.Fatal(err)
	}
	call, _, err := s.CreateCall(ctx, user, store.CallInput{Type: "default"})
	if err != nil {
		t.Fatal(err)
	}
	join, err := s.JoinCall(ctx, store.JoinCallParams{CallID: call.ID, UserID: user, ParticipantID: store.NewID(),
		Nodes: []sfu.Node{{ID: "sfu-1", URL: "wss://sfu-1.example:443"}}, LiveUntil: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	id := join.Participant.ID
	key := s.Key("calls", "p", id.String())
	if err := s.Redis().Del(ctx, key).Err(); err != nil { // Redis lost the facts
		t.Fatal(err)
	}
	// The participant leaves between the read and the write back, as its
	// node would: commit, then forget its facts.
	reset := store.SetFactsRead(func() {
		d, err := s.LeaveCall(ctx, id, "left")
		if err != nil || len(d.Left) != 1 {
			t.Errorf("leave: %+v, %v", d, err)
			return
		}
		if err := s.ForgetCallParticipants(ctx, d.IDs); err != nil {
			t.Error(err)
		}
	})
	facts, err := s.CallParticipantFacts(ctx, []uuid.UUID{id})
	reset()
	if err != nil || facts[0] == nil || facts[0].LeftAt != nil {
		t.Fatalf("facts read before the leave: %+v, %v", facts[0], err)
	}
	if n, err := s.Redis().Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("the departed participant's facts are in Redis (%d, %v)", n, err)
	}
	facts, err = s.CallParticipantFacts(ctx, []uuid.UUID{id})
	if err != nil || facts[0] == nil || facts[0].LeftAt == nil {
		t.Fatalf("facts after the leave: %+v, %v", facts[0], err)
	}

	// Without a leave, restored facts stay, and the next read needs no
	// PostgreSQL.
	live, err := s.JoinCall(ctx, store.JoinCallParams{CallID: call.ID, UserID: user, ParticipantID: store.NewID(),
		Nodes: []sfu.Node{{ID: "sfu-1", URL: "wss://sfu-1.example:443"}}, LiveUntil: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	liveKey := s.Key("calls", "p", live.Participant.ID.String())
	if err := s.Redis().Del(ctx, liveKey).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CallParticipantFacts(ctx, []uuid.UUID{live.Participant.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Redis().Exists(ctx, liveKey).Result(); err != nil || n != 1 {
		t.Fatalf("a live participant's facts were not restored (%d, %v)", n, err)
	}
}
