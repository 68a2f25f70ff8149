package resolvers_test

import (
	"context"
	"fmt"
	"runtime/metrics"
	"syscall"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// Lists are marshalled in a plain loop only when nothing selected under
// their elements can wait (internal/listloop). A page whose elements read
// through a loader no resolver primed (a message's quoted message) must
// still run them together, so the loader sees every key in one batch: one
// statement for the page's quoted messages, not one per message. Plain
// lists under the same page (reaction counts) loop and change nothing.
func TestListElementsThatWaitStillBatch(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	owner, other := "ll-owner-"+tag, "ll-other-"+tag
	env.AddUsers(t, n, owner, other)
	ch := "ll" + tag
	n.Must(t, env.Token(t, owner), `mutation($id: ID!, $m: [ID!]) { createChannel(input: {type: "messaging", id: $id, members: $m}) { id } }`,
		brooktest.Vars{"id": ch, "m": []string{other}}, nil)
	cid := "messaging:" + ch
	ctx := context.Background()
	const quoted = 6
	var ids []string
	for i := 0; i < quoted; i++ {
		m, _, err := n.Store.SendMessage(ctx, cid, owner, store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("quoted %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{owner, other} {
			if _, err := n.Store.AddMessageReaction(ctx, m.ID, u, "like"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := n.Store.AddMessageReaction(ctx, m.ID, other, "love"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID.String())
	}
	for i, id := range ids {
		if _, _, err := n.Store.SendMessage(ctx, cid, other, store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("quoting %d", i), QuotedMessageID: &id}); err != nil {
			t.Fatal(err)
		}
	}
	env.CaughtUp(t) // written straight to the primary; read as another user
	page := func(node string) (ran int64, resp map[string]any) {
		q := fmt.Sprintf(`{ channel(id: %q) { messages(last: %d) { edges { node { %s } } } } }`, cid, 2*quoted, node)
		n.Must(t, env.Token(t, other), q, nil, nil) // warm: the caller's rate limits, caches
		before := n.Store.Statements()
		n.Must(t, env.Token(t, other), q, nil, &resp)
		return n.Store.Statements() - before, resp
	}
	plain, _ := page(`id text reactionCounts { kind count }`)
	withQuotes, resp := page(`id text reactionCounts { kind count } quotedMessage { id text }`)
	if withQuotes != plain+1 {
		t.Fatalf("the page with quoted messages ran %d statements, the page without %d: want one more (one batch)", withQuotes, plain)
	}
	edges := resp["channel"].(map[string]any)["messages"].(map[string]any)["edges"].([]any)
	got := 0
	for _, e := range edges {
		node := e.(map[string]any)["node"].(map[string]any)
		if q, ok := node["quotedMessage"].(map[string]any); ok && q["id"] != nil {
			got++
		}
		if rc := node["reactionCounts"].([]any); node["quotedMessage"] == nil && len(rc) != 2 {
			t.Fatalf("a quoted message has reaction counts %v, want like and love", rc)
		}
	}
	if got != quoted {
		t.Fatalf("%d messages have their quoted message, want %d", got, quoted)
	}
}

// BenchmarkHistoryPage reads a page of 50 messages through a node's
// GraphQL endpoint, in process, and reports the goroutines the process
// started and the CPU it used per page (server and client together): the
// bench page (authors, reaction counts), and the same page of plain fields
// only, whose edges no resolver waits on.
func BenchmarkHistoryPage(b *testing.B) {
	n := env.StartNode(b, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	users := []string{"llb-a-" + tag, "llb-b-" + tag, "llb-c-" + tag, "llb-d-" + tag}
	env.AddUsers(b, n, users...)
	ch := "llb" + tag
	n.Must(b, env.Token(b, users[0]), `mutation($id: ID!, $m: [ID!]) { createChannel(input: {type: "messaging", id: $id, members: $m}) { id } }`,
		brooktest.Vars{"id": ch, "m": users[1:]}, nil)
	cid := "messaging:" + ch
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		m, _, err := n.Store.SendMessage(ctx, cid, users[i%4], store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("history message %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < i%4; j++ {
			if _, err := n.Store.AddMessageReaction(ctx, m.ID, users[j], []string{"like", "love", "haha"}[j%3]); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := n.Client(env.Token(b, users[1]))
	for _, page := range []struct{ name, node string }{
		{"bench", `id text createdAt user { name } reactionCounts { kind count }`},
		{"plain", `id text createdAt type replyCount`},
	} {
		b.Run(page.name, func(b *testing.B) {
			q := fmt.Sprintf(`{ channel(id: %q) { messages(last: 50) { edges { node { %s } } } } }`, cid, page.node)
			if err := c.Run(ctx, q, nil, nil); err != nil {
				b.Fatal(err)
			}
			g0, cpu0 := goroutinesCreated(), processCPU()
			for b.Loop() {
				if err := c.Run(ctx, q, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(goroutinesCreated()-g0)/float64(b.N), "goroutines/op")
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
		})
	}
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
