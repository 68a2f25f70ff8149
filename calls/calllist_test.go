package calls_test

import (
	"slices"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

const callsQuery = `query($f: CallFilter, $s: CallSort, $first: Int, $after: String) {
	calls(filter: $f, sort: $s, first: $first, after: $after) { edges { cursor node { id startsAt } } pageInfo { hasNextPage endCursor } } }`

type callPage struct {
	Edges []struct {
		Cursor string
		Node   struct {
			ID       string
			StartsAt *string
		}
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

func (p callPage) ids() []string {
	out := make([]string, len(p.Edges))
	for i, e := range p.Edges {
		out[i] = e.Node.ID
	}
	return out
}

func listCalls(t *testing.T, n *brooktest.Node, token string, vars brooktest.Vars) callPage {
	t.Helper()
	var out struct{ Calls callPage }
	n.Must(t, token, callsQuery, vars, &out)
	return out.Calls
}

// calls lists the caller's calls (an admin's: everyone's), by each filter,
// in both orders, a page at a time; me.calls is the same list; another
// user's is not the caller's to read.
func TestListCalls(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	now := time.Now().UTC()
	create := func(user string, in map[string]any) string {
		t.Helper()
		var out struct{ CreateCall struct{ ID string } }
		n.Must(t, env.Token(t, user), `mutation($in: CallInput!) { createCall(input: $in) { id } }`, brooktest.Vars{"in": in}, &out)
		return out.CreateCall.ID
	}
	c1 := create(alice, map[string]any{"type": "default", "id": "c1-" + tag, "members": []string{bob}})
	c2 := create(alice, map[string]any{"type": "audio_room", "id": "c2-" + tag})
	c3 := create(alice, map[string]any{"type": "default", "id": "c3-" + tag, "startsAt": now.Add(2 * time.Hour).Format(time.RFC3339)})
	c4 := create(alice, map[string]any{"type": "default", "id": "c4-" + tag, "startsAt": now.Add(time.Hour).Format(time.RFC3339)})
	c5 := create(bob, map[string]any{"type": "default", "id": "c5-" + tag, "members": []string{alice}})
	joinCall(t, n, alice, c1)
	a := env.Token(t, alice)

	want := func(what string, got callPage, ids ...string) {
		t.Helper()
		if !slices.Equal(got.ids(), ids) {
			t.Fatalf("%s: %v, want %v", what, got.ids(), ids)
		}
	}
	want("alice's calls, newest first", listCalls(t, n, a, nil), c5, c4, c3, c2, c1)
	want("oldest first", listCalls(t, n, a, brooktest.Vars{"s": map[string]any{"field": "CREATED_AT", "direction": "ASC"}}), c1, c2, c3, c4, c5)
	want("type", listCalls(t, n, a, brooktest.Vars{"f": map[string]any{"type": "audio_room"}}), c2)
	want("createdBy", listCalls(t, n, a, brooktest.Vars{"f": map[string]any{"createdBy": bob}}), c5)
	want("member", listCalls(t, n, a, brooktest.Vars{"f": map[string]any{"member": bob}}), c5, c1)
	want("live", listCalls(t, n, a, brooktest.Vars{"f": map[string]any{"live": true}}), c1)
	want("not live", listCalls(t, n, a, brooktest.Vars{"f": map[string]any{"live": false}}), c5, c4, c3, c2)
	want("scheduled, soonest first", listCalls(t, n, a, brooktest.Vars{
		"f": map[string]any{"startsAfter": now.Add(30 * time.Minute).Format(time.RFC3339)},
		"s": map[string]any{"field": "STARTS_AT", "direction": "ASC"}}), c4, c3)
	want("a non-member sees none", listCalls(t, n, env.Token(t, carol), brooktest.Vars{"f": map[string]any{"createdBy": alice}}))
	want("an admin sees everyone's", listCalls(t, n, env.AdminToken(t, "root"), brooktest.Vars{"f": map[string]any{"createdBy": alice}}), c4, c3, c2, c1)

	// Pages of two: keyset cursors, no gap, no repeat.
	var seen []string
	vars := brooktest.Vars{"first": 2}
	for pages := 0; ; pages++ {
		if pages == 4 {
			t.Fatal("more than 3 pages of 5 calls")
		}
		p := listCalls(t, n, a, vars)
		seen = append(seen, p.ids()...)
		if !p.PageInfo.HasNextPage {
			break
		}
		vars = brooktest.Vars{"first": 2, "after": *p.PageInfo.EndCursor}
	}
	want("paged", callPage{Edges: listCalls(t, n, a, nil).Edges}, seen...)

	var me struct {
		Me struct{ Calls callPage }
	}
	n.Must(t, a, `{ me { calls(first: 10) { edges { node { id } } pageInfo { hasNextPage } } } }`, nil, &me)
	want("me.calls", me.Me.Calls, c5, c4, c3, c2, c1)
	brooktest.WantCode(t, n.Query(t, a, `query($id: ID!) { user(id: $id) { calls { edges { cursor } } } }`, brooktest.Vars{"id": bob}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, a, callsQuery, brooktest.Vars{"after": "not-a-cursor"}), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, a, callsQuery, brooktest.Vars{"first": 101}), api.CodeBadUserInput)
}
