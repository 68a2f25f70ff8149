package users_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// searchUsers finds users by the start of their name (their id when they
// have none), whatever the case, in name order, page by page.
func TestSearchUsers(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	admin := env.AdminToken(t, "admin")
	n.Must(t, admin, `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`, brooktest.Vars{"u": []map[string]any{
		{"id": "s1-" + tag, "name": "Zq" + tag + " Ada"},
		{"id": "s2-" + tag, "name": "zq" + tag + " Bea"},
		{"id": "s3-" + tag, "name": "ZQ" + tag + " Cy"},
		{"id": "s4-" + tag, "name": "Other"},
		{"id": "zq" + tag + "-noname"},
	}}, nil)
	tok := env.Token(t, "s4-"+tag)
	q := `query($q: String!, $after: String) { searchUsers(query: $q, first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`
	type page struct {
		SearchUsers struct {
			Edges    []struct{ Node struct{ ID string } }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	var ids []string
	var after any
	for i := 0; i < 5; i++ {
		var p page
		n.Must(t, tok, q, brooktest.Vars{"q": "zQ" + tag, "after": after}, &p)
		for _, e := range p.SearchUsers.Edges {
			ids = append(ids, e.Node.ID)
		}
		if !p.SearchUsers.PageInfo.HasNextPage {
			break
		}
		after = p.SearchUsers.PageInfo.EndCursor
	}
	want := fmt.Sprint([]string{"s1-" + tag, "s2-" + tag, "s3-" + tag, "zq" + tag + "-noname"})
	if fmt.Sprint(ids) != want {
		t.Fatalf("search by prefix: %v, want %v", ids, want)
	}
	var one page
	n.Must(t, tok, q, brooktest.Vars{"q": "zq" + tag + " b"}, &one)
	if len(one.SearchUsers.Edges) != 1 || one.SearchUsers.Edges[0].Node.ID != "s2-"+tag {
		t.Fatalf("search by a longer prefix: %+v", one)
	}
	brooktest.WantCode(t, n.Query(t, tok, q, brooktest.Vars{"q": "  "}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, tok, q, brooktest.Vars{"q": strings.Repeat("a", 101)}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, "", q, brooktest.Vars{"q": "a"}), "UNAUTHENTICATED")
}
