package calls_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

type callJoinResult struct {
	JoinCall struct {
		Call    struct{ ID string }
		Session struct {
			ID  string
			SFU struct{ ID, URL string }
		}
		Participant struct {
			ID   string
			User struct{ ID string }
		}
		Others []struct {
			ID   string
			User struct{ ID string }
		}
	}
}

const joinCallQuery = `mutation($id: ID!) { joinCall(id: $id) {
	call { id } session { id sfu { id url } } participant { id user { id } } others { id user { id } } } }`

func createCall(t *testing.T, n *brooktest.Node, user, typ, id string, members ...string) string {
	t.Helper()
	var out struct{ CreateCall struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": typ, "id": id, "members": members}}, &out)
	return out.CreateCall.ID
}

func joinCall(t *testing.T, n *brooktest.Node, user, cid string) callJoinResult {
	t.Helper()
	var out callJoinResult
	n.Must(t, env.Token(t, user), joinCallQuery, brooktest.Vars{"id": cid}, &out)
	return out
}

// callEvent is a callEvents message as the tests select it.
type callEvent struct {
	Type        string
	Call        string
	Session     string
	Reason      *string
	Participant *struct {
		ID     string
		User   struct{ ID string }
		LeftAt *string
	}
	Participants []struct{ ID string }
	Signal       *struct {
		ID   string
		From struct {
			ID   string
			User struct{ ID string }
		}
		To      string
		Kind    string
		Payload string
	}
}

const callEventsQuery = `subscription($p: ID!) { callEvents(participant: $p) {
	type call session reason participant { id user { id } leftAt } participants { id }
	signal { id from { id user { id } } to kind payload } } }`

// subscribeCallEvents subscribes to a participant's events on n and waits
// for the stream's ready event, after which no event is missed.
func subscribeCallEvents(t *testing.T, n *brooktest.Node, user, pid string) *brooktest.Sub {
	t.Helper()
	sub := n.MustDial(t, env.Token(t, user)).Subscribe(callEventsQuery, brooktest.Vars{"p": pid})
	if ev := nextCallEvent(t, sub); ev.Type != "ready" || ev.Participant.ID != pid {
		t.Fatalf("first callEvents event: %+v, want ready for %s", ev, pid)
	}
	return sub
}

func nextCallEvent(t *testing.T, sub *brooktest.Sub) callEvent {
	t.Helper()
	var out struct{ CallEvents callEvent }
	sub.NextData(&out)
	return out.CallEvents
}
