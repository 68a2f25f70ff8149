package calls_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/brooktest"
)

// A participant that leaves while its facts are being read back from
// PostgreSQL (Redis had lost them) is not put back into Redis as live:
// the signaling path would otherwise take it for a participant in the call
// until the facts expired.
func TestFactsOfAParticipantLeavingDuringTheirRestoreAreDropped(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	ctx := context.Background()
	user := "facts-" + brooktest.Tag()
	env.AddUsers(t, n, user)
	call := createCall(t, n, user, "default", "")
	id := uuid.MustParse(joinCall(t, n, user, call).JoinCall.Participant.ID)
	rdb := n.State.Redis()
	key := n.State.Key("calls", "p", id.String())
	if err := rdb.Del(ctx, key).Err(); err != nil { // Redis lost the facts
		t.Fatal(err)
	}
	// The participant leaves between the read and the write back, as its
	// node would: commit, then forget its facts.
	reset := calls.OnFactsRead(func() {
		d, err := n.Store.LeaveCall(ctx, id, "left")
		if err != nil || len(d.Left) != 1 {
			t.Errorf("leave: %+v, %v", d, err)
			return
		}
		if err := n.State.ForgetCallParticipants(ctx, d.IDs); err != nil {
			t.Error(err)
		}
	})
	facts, err := n.Calls.ParticipantFacts(ctx, []uuid.UUID{id})
	reset()
	if err != nil || facts[0] == nil || facts[0].LeftAt != nil {
		t.Fatalf("facts read before the leave: %+v, %v", facts[0], err)
	}
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("the departed participant's facts are in Redis (%d, %v)", n, err)
	}
	facts, err = n.Calls.ParticipantFacts(ctx, []uuid.UUID{id})
	if err != nil || facts[0] == nil || facts[0].LeftAt == nil {
		t.Fatalf("facts after the leave: %+v, %v", facts[0], err)
	}

	// Without a leave, restored facts stay, and the next read needs no
	// PostgreSQL.
	live := joinCall(t, n, user, call).JoinCall.Participant.ID
	liveKey := n.State.Key("calls", "p", live)
	if err := rdb.Del(ctx, liveKey).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Calls.ParticipantFacts(ctx, []uuid.UUID{uuid.MustParse(live)}); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, liveKey).Result(); err != nil || n != 1 {
		t.Fatalf("a live participant's facts were not restored (%d, %v)", n, err)
	}
}
