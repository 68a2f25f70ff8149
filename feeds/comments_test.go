package feeds_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

type commentNode struct {
	ID, Text   string
	Depth      int
	ReplyCount int
	User       struct{ ID string }
	Parent     *struct{ ID string }
}

const addCommentQ = `mutation($a: ID!, $t: String!, $p: ID, $m: [ID!]) {
	addComment(activity: $a, text: $t, parentId: $p, mentionedUserIds: $m) { id text depth replyCount user { id } parent { id } } }`

// comment adds a comment by user (a reply when parent is set) and returns it.
func comment(t *testing.T, n *brooktest.Node, user, activity, text, parent string, mentions ...string) commentNode {
	t.Helper()
	var out struct{ AddComment commentNode }
	vars := brooktest.Vars{"a": activity, "t": text, "m": mentions}
	if parent != "" {
		vars["p"] = parent
	}
	n.Must(t, env.Token(t, user), addCommentQ, vars, &out)
	return out.AddComment
}

// commentTexts reads a page of an activity's comments in sort order.
func commentTexts(t *testing.T, n *brooktest.Node, token, activity, sort string, first int, after *string) (texts []string, end *string, more bool, count int) {
	t.Helper()
	var out struct {
		Activity struct {
			CommentCount int
			Comments     struct {
				Edges    []struct{ Node commentNode }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
	}
	n.Must(t, token, `query($a: ID!, $s: CommentSort, $n: Int, $after: String) { activity(id: $a) { commentCount
		comments(sort: $s, first: $n, after: $after) { edges { node { id text } } pageInfo { hasNextPage endCursor } } } }`,
		brooktest.Vars{"a": activity, "s": sort, "n": first, "after": after}, &out)
	for _, e := range out.Activity.Comments.Edges {
		texts = append(texts, e.Node.Text)
	}
	return texts, out.Activity.Comments.PageInfo.EndCursor, out.Activity.Comments.PageInfo.HasNextPage, out.Activity.CommentCount
}

func TestCommentThreads(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol", "admin")
	act := post(t, n, u["alice"], "photo")
	c1 := comment(t, n, u["bob"], act, "first", "")
	c2 := comment(t, n, u["carol"], act, "second", "")
	r1 := comment(t, n, u["alice"], act, "reply", c1.ID)
	r2 := comment(t, n, u["carol"], act, "reply to reply", r1.ID)
	if c1.Depth != 1 || r1.Depth != 2 || r2.Depth != 3 || r1.Parent == nil || r1.Parent.ID != c1.ID || c1.Parent != nil {
		t.Fatalf("depths: %+v %+v %+v", c1, r1, r2)
	}
	bob := env.Token(t, u["bob"])
	// Threads are 3 deep by default: no reply to a reply's reply.
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": act, "t": "too deep", "p": r2.ID}), "BAD_USER_INPUT")
	// Bad input of every kind writes nothing.
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": act, "t": "  "}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": act, "t": "x", "p": "nope"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": act, "t": "x", "p": "01900000-0000-7000-8000-000000000000"}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": act, "t": "x", "m": []string{"no-such-user-" + brooktest.Tag()}}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": "01900000-0000-7000-8000-000000000000", "t": "x"}), "NOT_FOUND")
	other := post(t, n, u["bob"], "other")
	brooktest.WantCode(t, n.Query(t, bob, addCommentQ, brooktest.Vars{"a": other, "t": "x", "p": c1.ID}), "NOT_FOUND")
	if got := n.Count(t, `SELECT count(*) FROM comments WHERE activity_id = $1`, act); got != 4 {
		t.Fatalf("comments written: %d, want 4", got)
	}

	texts, _, _, count := commentTexts(t, n, bob, act, "NEWEST", 10, nil)
	if !slices.Equal(texts, []string{"second", "first"}) || count != 4 {
		t.Fatalf("newest: %v, count %d", texts, count)
	}
	texts, end, more, _ := commentTexts(t, n, bob, act, "OLDEST", 1, nil)
	if !slices.Equal(texts, []string{"first"}) || !more {
		t.Fatalf("oldest page 1: %v %v", texts, more)
	}
	texts, _, more, _ = commentTexts(t, n, bob, act, "OLDEST", 1, end)
	if !slices.Equal(texts, []string{"second"}) || more {
		t.Fatalf("oldest page 2: %v %v", texts, more)
	}
	// TOP: c1 has a reply, c2 has none; a reaction to c2 and one more ties
	// them, and the newer wins the tie.
	texts, end, _, _ = commentTexts(t, n, bob, act, "TOP", 1, nil)
	if !slices.Equal(texts, []string{"first"}) {
		t.Fatalf("top: %v", texts)
	}
	texts, _, _, _ = commentTexts(t, n, bob, act, "TOP", 1, end)
	if !slices.Equal(texts, []string{"second"}) {
		t.Fatalf("top page 2: %v", texts)
	}
	n.Must(t, bob, `mutation($a: ID!, $c: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`,
		brooktest.Vars{"a": act, "c": c2.ID}, nil)
	if texts, _, _, _ = commentTexts(t, n, bob, act, "TOP", 2, nil); !slices.Equal(texts, []string{"second", "first"}) {
		t.Fatalf("top after a like: %v", texts)
	}
	// A cursor of another order is refused.
	_, oldEnd, _, _ := commentTexts(t, n, bob, act, "OLDEST", 1, nil)
	brooktest.WantCode(t, n.Query(t, bob, `query($a: ID!, $c: String) { activity(id: $a) { comments(sort: TOP, after: $c) { edges { cursor } } } }`,
		brooktest.Vars{"a": act, "c": oldEnd}), "BAD_USER_INPUT")

	// Replies page under their comment, oldest first.
	var thread struct {
		Activity struct {
			Comments struct {
				Edges []struct {
					Node struct {
						Text       string
						ReplyCount int
						Replies    struct {
							Edges []struct {
								Node struct {
									Text    string
									Replies struct {
										Edges []struct{ Node struct{ Text string } }
									}
								}
							}
						}
					}
				}
			}
		}
	}
	n.Must(t, bob, `query($a: ID!) { activity(id: $a) { comments(sort: OLDEST, first: 5) { edges { node { text replyCount
		replies(first: 5) { edges { node { text replies(first: 5) { edges { node { text } } } } } } } } } } }`, brooktest.Vars{"a": act}, &thread)
	top := thread.Activity.Comments.Edges
	if len(top) != 2 || top[0].Node.ReplyCount != 1 || len(top[0].Node.Replies.Edges) != 1 ||
		top[0].Node.Replies.Edges[0].Node.Text != "reply" || len(top[0].Node.Replies.Edges[0].Node.Replies.Edges) != 1 {
		t.Fatalf("thread: %+v", thread)
	}

	// Editing: the author or an admin; the activity's actor may not.
	upd := `mutation($id: ID!, $t: String) { updateComment(id: $id, text: $t) { text } }`
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["alice"]), upd, brooktest.Vars{"id": c1.ID, "t": "edited"}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bob, upd, brooktest.Vars{"id": c1.ID}), "BAD_USER_INPUT")
	var edited struct{ UpdateComment struct{ Text string } }
	n.Must(t, bob, upd, brooktest.Vars{"id": c1.ID, "t": "edited"}, &edited)
	if edited.UpdateComment.Text != "edited" {
		t.Fatalf("edit: %+v", edited)
	}
	n.Must(t, env.AdminToken(t, u["admin"]), upd, brooktest.Vars{"id": c1.ID, "t": "by admin"}, nil)

	// Deleting: carol may not delete bob's comment; alice, the actor,
	// moderates it away with its replies.
	del := `mutation($id: ID!) { deleteComment(id: $id) }`
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), del, brooktest.Vars{"id": c1.ID}), "FORBIDDEN")
	var gone struct{ DeleteComment bool }
	n.Must(t, env.Token(t, u["alice"]), del, brooktest.Vars{"id": c1.ID}, &gone)
	if !gone.DeleteComment {
		t.Fatal("deleteComment said the comment did not exist")
	}
	n.Must(t, env.Token(t, u["alice"]), del, brooktest.Vars{"id": c1.ID}, &gone)
	if gone.DeleteComment {
		t.Fatal("deleting again said it existed")
	}
	texts, _, _, count = commentTexts(t, n, bob, act, "NEWEST", 10, nil)
	if !slices.Equal(texts, []string{"second"}) || count != 1 ||
		n.Count(t, `SELECT count(*) FROM comments WHERE activity_id = $1`, act) != 1 {
		t.Fatalf("after delete: %v count %d", texts, count)
	}
}

// Comment counts and reply counts are exact after concurrent comments,
// replies and deletions.
func TestCommentCountsConcurrent(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob")
	act := post(t, n, u["alice"], "viral")
	root := comment(t, n, u["bob"], act, "root", "")
	doomed := comment(t, n, u["bob"], act, "doomed", "")
	var wg sync.WaitGroup
	codes := make([]string, 16)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			parent := ""
			switch i % 3 {
			case 1:
				parent = root.ID
			case 2:
				parent = doomed.ID
			}
			if i == 7 {
				r := n.Query(t, env.Token(t, u["bob"]), `mutation($id: ID!) { deleteComment(id: $id) }`, brooktest.Vars{"id": doomed.ID})
				codes[i] = r.Code()
				return
			}
			vars := brooktest.Vars{"a": act, "t": fmt.Sprint("c", i)}
			if parent != "" {
				vars["p"] = parent
			}
			codes[i] = n.Query(t, env.Token(t, u["bob"]), addCommentQ, vars).Code()
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		// A reply to doomed after its deletion finds it gone.
		if c != "" && !(i%3 == 2 && c == "NOT_FOUND") {
			t.Fatalf("op %d: %s", i, c)
		}
	}
	rows := n.Count(t, `SELECT count(*) FROM comments WHERE activity_id = $1`, act)
	var got struct {
		Activity struct {
			CommentCount int
			Comments     struct{ Edges []struct{ Node commentNode } }
		}
	}
	n.Must(t, env.Token(t, u["bob"]), `query($a: ID!) { activity(id: $a) { commentCount comments(first: 100) { edges { node { id replyCount } } } } }`,
		brooktest.Vars{"a": act}, &got)
	if got.Activity.CommentCount != rows {
		t.Fatalf("commentCount %d, rows %d", got.Activity.CommentCount, rows)
	}
	for _, e := range got.Activity.Comments.Edges {
		if want := n.Count(t, `SELECT count(*) FROM comments WHERE parent_id = $1`, e.Node.ID); e.Node.ReplyCount != want {
			t.Fatalf("replyCount of %s: %d, rows %d", e.Node.ID, e.Node.ReplyCount, want)
		}
	}
}

func TestCommentDepthOption(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedCommentDepth = 1 }})
	u := feedUsers(t, n, brooktest.Tag(), "alice")
	act := post(t, n, u["alice"], "flat")
	c := comment(t, n, u["alice"], act, "only", "")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["alice"]), addCommentQ, brooktest.Vars{"a": act, "t": "reply", "p": c.ID}), "BAD_USER_INPUT")
}
