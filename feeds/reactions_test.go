package feeds_test

import (
	"fmt"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

func TestFeedReactions(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	id := post(t, n, u["alice"], "photo")
	react := `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k, data: {text: "hi"}) { id kind user { id } activity { id } } }`
	type reaction struct {
		ID, Kind string
		User     struct{ ID string }
	}
	var r1, r2 struct{ AddReaction reaction }
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": id, "k": "like"}, &r1)
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": id, "k": "like"}, &r2)
	if r1.AddReaction.ID != r2.AddReaction.ID {
		t.Fatal("the same reaction twice made two")
	}
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "like"}, nil)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "comment"}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "no spaces"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": "01900000-0000-7000-8000-000000000000", "k": "like"}), "NOT_FOUND")

	var got struct {
		Activity struct {
			ReactionCounts []struct {
				Kind  string
				Count int
			}
			OwnReactions    []reaction
			LatestReactions []reaction
			Likes           []reaction
		}
	}
	q := `query($a: ID!) { activity(id: $a) { reactionCounts { kind count } ownReactions { id kind user { id } }
		latestReactions { id kind user { id } } likes: latestReactions(kind: "like", first: 1) { id kind user { id } } } }`
	n.Must(t, env.Token(t, u["carol"]), q, brooktest.Vars{"a": id}, &got)
	a := got.Activity
	if fmt.Sprint(a.ReactionCounts) != "[{comment 1} {like 2}]" || len(a.OwnReactions) != 2 || len(a.LatestReactions) != 3 ||
		len(a.Likes) != 1 || a.Likes[0].User.ID != u["carol"] {
		t.Fatalf("reactions: %+v", a)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r1.AddReaction.ID}), "FORBIDDEN")
	var rm struct{ RemoveReaction bool }
	n.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r1.AddReaction.ID}, &rm)
	if !rm.RemoveReaction {
		t.Fatal("removeReaction said the reaction did not exist")
	}
	n.Must(t, env.Token(t, u["bob"]), q, brooktest.Vars{"a": id}, &got)
	if fmt.Sprint(got.Activity.ReactionCounts) != "[{comment 1} {like 1}]" || len(got.Activity.OwnReactions) != 0 {
		t.Fatalf("after removal: %+v", got.Activity)
	}
}
