package calls_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/product"
)

// BenchmarkCallSignalRelay measures the signaling hot path in process:
// sendSignal (authorization from the facts cache, encoding, PUBLISH to
// Redis) through the bus (Redis delivery, fan-out) to the recipient's
// callEvents channel (decoding). One op is one relayed signal; allocs/op
// counts every allocation of the process on the way (GraphQL and
// WebSocket framing excluded). `make bench-calls` runs it and prints the
// figures.
func BenchmarkCallSignalRelay(b *testing.B) {
	n := env.StartNode(b, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	n.Must(b, env.AdminToken(b, "root"), `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`,
		brooktest.Vars{"u": []map[string]any{{"id": alice}, {"id": bob}}}, nil)
	var created struct{ CreateCall struct{ ID string } }
	n.Must(b, env.Token(b, alice), `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "default", "id": "bench-" + tag, "members": []string{bob}}}, &created)
	join := func(user string) string {
		var out callJoinResult
		n.Must(b, env.Token(b, user), joinCallQuery, brooktest.Vars{"id": created.CreateCall.ID}, &out)
		return out.JoinCall.Participant.ID
	}
	from, to := join(alice), join(bob)

	// A Service of its own, as a node has (started and stopped with it).
	svc := calls.New(calls.Options{Parts: product.Parts{Store: n.Store, State: n.State, Bus: n.Bus, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}})
	svc.Start(context.Background())
	defer svc.Stop()
	aliceCtx := auth.WithIdentity(context.Background(), auth.Identity{UserID: alice, Role: auth.RoleUser})
	bobCtx, cancel := context.WithCancel(auth.WithIdentity(context.Background(), auth.Identity{UserID: bob, Role: auth.RoleUser}))
	defer cancel()
	events, err := svc.CallEvents(bobCtx, to)
	if err != nil {
		b.Fatal(err)
	}
	// Every stream opens with a ready event.
	if ev := <-events; ev == nil || ev.Type != calls.EventReady {
		b.Fatalf("first event %+v, want ready", ev)
	}
	// A typical trickled ICE candidate.
	const payload = `{"candidate":"candidate:1966762134 1 udp 2130706431 127.0.0.1 52153 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"hGfAkWqVbRnKxYzs"}`
	send := func() {
		if _, err := svc.SendSignal(aliceCtx, from, to, calls.SignalICECandidate, payload); err != nil {
			b.Fatal(err)
		}
		ev := <-events
		if ev == nil || ev.Signal == nil || ev.Signal.Payload != payload {
			b.Fatalf("event %+v", ev)
		}
	}
	for i := 0; i < 100; i++ { // warm the caches
		send()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		send()
	}
}
