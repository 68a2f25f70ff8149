package feeds_test

import (
	"fmt"
	"slices"
	"strings"
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

	// A reply opens by id, with its parent and its own replies.
	byID := `query($id: ID!) { comment(id: $id) { id text depth parent { id } replies { edges { node { text } } } } }`
	var opened struct {
		Comment *struct {
			ID, Text string
			Depth    int
			Parent   struct{ ID string }
			Replies  struct {
				Edges []struct{ Node struct{ Text string } }
			}
		}
	}
	n.Must(t, bob, byID, brooktest.Vars{"id": r1.ID}, &opened)
	if c := opened.Comment; c == nil || c.Text != "reply" || c.Depth != 2 || c.Parent.ID != c1.ID ||
		len(c.Replies.Edges) != 1 || c.Replies.Edges[0].Node.Text != "reply to reply" {
		t.Fatalf("comment by id: %+v", opened.Comment)
	}
	brooktest.WantCode(t, n.Query(t, bob, byID, brooktest.Vars{"id": "nope"}), "BAD_USER_INPUT")

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
	// Its replies went with it: by id, none of them is there.
	for _, id := range []string{c1.ID, r1.ID, r2.ID} {
		opened.Comment = nil
		n.Must(t, bob, byID, brooktest.Vars{"id": id}, &opened)
		if opened.Comment != nil {
			t.Fatalf("deleted comment %s by id: %+v", id, opened.Comment)
		}
	}
	texts, _, _, count = commentTexts(t, n, bob, act, "NEWEST", 10, nil)
	if !slices.Equal(texts, []string{"second"}) || count != 1 ||
		n.Count(t, `SELECT count(*) FROM comments WHERE activity_id = $1`, act) != 1 {
		t.Fatalf("after delete: %v count %d", texts, count)
	}

	// Removing the activity removes its comments and their reactions.
	n.Must(t, env.Token(t, u["alice"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": act}, nil)
	n.WaitForJobs(t)
	if left := n.Count(t, `SELECT count(*) FROM comments WHERE activity_id = $1`, act) +
		n.Count(t, `SELECT count(*) FROM comment_reactions WHERE activity_id = $1`, act); left != 0 {
		t.Fatalf("%d comments and comment reactions left of a removed activity", left)
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

// notifications reads a notification feed's groups as "verb:count:actors".
func notifications(t *testing.T, n *brooktest.Node, user string) []string {
	t.Helper()
	groups, _, _ := feedGroups(t, n, env.Token(t, user), "notification:"+user)
	var out []string
	for _, g := range groups {
		var actors []string
		for _, a := range g.Actors {
			actors = append(actors, a.ID)
		}
		slices.Sort(actors)
		out = append(out, fmt.Sprintf("%s:%d:%v", g.Verb, g.ActivityCount, actors))
	}
	slices.Sort(out)
	return out
}

func TestCommentNotifications(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol", "dave")
	act := post(t, n, u["alice"], "photo")
	c := comment(t, n, u["bob"], act, "nice, @carol @dave", "", u["carol"], u["dave"], u["bob"])
	comment(t, n, u["carol"], act, "agreed", c.ID, u["alice"]) // alice is the actor: one comment notice
	comment(t, n, u["alice"], act, "thanks", "")               // her own: none
	n.WaitForJobs(t)
	if got := notifications(t, n, u["alice"]); fmt.Sprint(got) != fmt.Sprintf("[comment:2:[%s %s]]", u["bob"], u["carol"]) {
		t.Fatalf("alice's notifications: %v", got)
	}
	if got := notifications(t, n, u["carol"]); fmt.Sprint(got) != fmt.Sprintf("[mention:1:[%s]]", u["bob"]) {
		t.Fatalf("carol's notifications: %v", got)
	}
	if got := notifications(t, n, u["bob"]); len(got) != 0 {
		t.Fatalf("bob mentioned himself and got %v", got)
	}
	// The notification points at the comment and its activity.
	var out struct {
		Feed struct {
			Groups struct {
				Edges []struct {
					Node struct {
						Activities []struct {
							Object string
							Target string
							Data   map[string]string
						}
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, u["dave"]), `query($f: ID!) { feed(id: $f) { groups { edges { node { activities { object target data } } } } } }`,
		brooktest.Vars{"f": "notification:" + u["dave"]}, &out)
	a := out.Feed.Groups.Edges[0].Node.Activities[0]
	if a.Object != "comment:"+c.ID || a.Target != "activity:"+act || a.Data["text"] != "nice, @carol @dave" {
		t.Fatalf("mention: %+v", a)
	}
	// A job that runs again writes nothing twice.
	before := n.Count(t, `SELECT count(*) FROM activities WHERE feed_id LIKE 'notification:%' AND actor_id = $1`, u["bob"])
	n.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!, $t: String) { updateComment(id: $id, text: $t) { id } }`, brooktest.Vars{"id": c.ID, "t": "x"}, nil)
	n.Count(t, `INSERT INTO jobs (id, kind, payload, run_at) SELECT gen_random_uuid(), 'feed.comment', json_build_object('comment', $1::uuid, 'activity', $2::uuid), now() RETURNING 1`, c.ID, act)
	n.WaitForJobs(t)
	if after := n.Count(t, `SELECT count(*) FROM activities WHERE feed_id LIKE 'notification:%' AND actor_id = $1`, u["bob"]); after != before || before != 3 {
		t.Fatalf("notifications by bob: %d, then %d after the job again; want 3", before, after)
	}
}

func TestReactionNotificationsAndPages(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	act := post(t, n, u["alice"], "photo")
	react := `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k) { id } }`
	var r struct{ AddReaction struct{ ID string } }
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": act, "k": "like"}, &r)
	n.WaitForJobs(t)
	// Removed and added again: still one notification.
	n.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r.AddReaction.ID}, nil)
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": act, "k": "like"}, nil)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "k": "like"}, nil)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "k": "wow"}, nil)
	n.Must(t, env.Token(t, u["alice"]), react, brooktest.Vars{"a": act, "k": "like"}, nil) // her own: none
	n.WaitForJobs(t)
	want := fmt.Sprintf("[like:2:[%s %s] wow:1:[%s]]", u["bob"], u["carol"], u["carol"])
	if got := notifications(t, n, u["alice"]); fmt.Sprint(got) != want {
		t.Fatalf("alice's notifications: %v, want %s", got, want)
	}

	// updateReaction: the author's data; others are refused.
	upd := `mutation($id: ID!) { updateReaction(id: $id, data: {emoji: "heart"}) { id data } }`
	var mine struct{ AddReaction struct{ ID string } }
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": act, "k": "like"}, &mine)
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), upd, brooktest.Vars{"id": mine.AddReaction.ID}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["bob"]), `mutation($id: ID!) { updateReaction(id: $id, data: "x") { id } }`,
		brooktest.Vars{"id": mine.AddReaction.ID}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["bob"]), upd, brooktest.Vars{"id": "01900000-0000-7000-8000-000000000000"}), "NOT_FOUND")
	var updated struct {
		UpdateReaction struct {
			ID   string
			Data map[string]string
		}
	}
	n.Must(t, env.Token(t, u["bob"]), upd, brooktest.Vars{"id": mine.AddReaction.ID}, &updated)
	if updated.UpdateReaction.Data["emoji"] != "heart" {
		t.Fatalf("updated: %+v", updated)
	}

	// Activity.reactions pages past the latest five.
	var users []string
	for i := 0; i < 7; i++ {
		users = append(users, fmt.Sprintf("%s-fan%d", u["alice"], i))
	}
	env.AddUsers(t, n, users...)
	for _, f := range users {
		n.Must(t, env.Token(t, f), react, brooktest.Vars{"a": act, "k": "clap"}, nil)
	}
	var seen []string
	var after *string
	for {
		var page struct {
			Activity struct {
				Reactions struct {
					Edges []struct {
						Node struct {
							Kind string
							User struct{ ID string }
						}
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		n.Must(t, env.Token(t, u["carol"]), `query($a: ID!, $after: String) { activity(id: $a) { reactions(kind: "clap", first: 3, after: $after) {
			edges { node { kind user { id } } } pageInfo { hasNextPage endCursor } } } }`, brooktest.Vars{"a": act, "after": after}, &page)
		for _, e := range page.Activity.Reactions.Edges {
			seen = append(seen, e.Node.User.ID)
		}
		if !page.Activity.Reactions.PageInfo.HasNextPage {
			break
		}
		after = page.Activity.Reactions.PageInfo.EndCursor
	}
	slices.Reverse(seen)
	if !slices.Equal(seen, users) {
		t.Fatalf("clap pages: %v", seen)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), `query($a: ID!) { activity(id: $a) { reactions(kind: "no spaces") { edges { cursor } } } }`,
		brooktest.Vars{"a": act}), "BAD_USER_INPUT")
}

func TestCommentReactions(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	act := post(t, n, u["alice"], "photo")
	c := comment(t, n, u["bob"], act, "hello", "")
	react := `mutation($a: ID!, $c: ID, $k: String!) { addReaction(activity: $a, comment: $c, kind: $k) { id kind comment { id } activity { id } } }`
	type reaction struct {
		ID, Kind string
		Comment  *struct{ ID string }
	}
	var r1, r2 struct{ AddReaction reaction }
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "c": c.ID, "k": "like"}, &r1)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "c": c.ID, "k": "like"}, &r2)
	if r1.AddReaction.ID != r2.AddReaction.ID || r1.AddReaction.Comment == nil || r1.AddReaction.Comment.ID != c.ID {
		t.Fatalf("comment reactions: %+v %+v", r1, r2)
	}
	n.Must(t, env.Token(t, u["alice"]), react, brooktest.Vars{"a": act, "c": c.ID, "k": "like"}, nil)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "k": "like"}, nil) // the activity's own
	other := post(t, n, u["bob"], "other")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": other, "c": c.ID, "k": "like"}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": act, "c": c.ID, "k": "a b"}), "BAD_USER_INPUT")

	q := `query($a: ID!) { activity(id: $a) { reactionCounts { kind count } comments { edges { node {
		reactionCounts { kind count } ownReactions { kind } } } } } }`
	var got struct {
		Activity struct {
			ReactionCounts []struct {
				Kind  string
				Count int
			}
			Comments struct {
				Edges []struct {
					Node struct {
						ReactionCounts []struct {
							Kind  string
							Count int
						}
						OwnReactions []struct{ Kind string }
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, u["carol"]), q, brooktest.Vars{"a": act}, &got)
	node := got.Activity.Comments.Edges[0].Node
	if fmt.Sprint(got.Activity.ReactionCounts) != "[{like 1}]" || fmt.Sprint(node.ReactionCounts) != "[{like 2}]" || len(node.OwnReactions) != 1 {
		t.Fatalf("counts: %+v", got)
	}
	var rm struct{ RemoveReaction bool }
	n.Must(t, env.Token(t, u["carol"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r1.AddReaction.ID}, &rm)
	n.Must(t, env.Token(t, u["carol"]), q, brooktest.Vars{"a": act}, &got)
	node = got.Activity.Comments.Edges[0].Node
	if !rm.RemoveReaction || fmt.Sprint(node.ReactionCounts) != "[{like 1}]" || len(node.OwnReactions) != 0 {
		t.Fatalf("after removal: %+v", got)
	}
	if n.Count(t, `SELECT reaction_count FROM comments WHERE id = $1`, c.ID) != 1 {
		t.Fatal("the comment's reaction_count is not 1")
	}
}

func TestCommentAdded(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, a, brooktest.Tag(), "alice", "bob", "carol")
	act := post(t, a, u["alice"], "photo")
	ws := b.MustDial(t, env.Token(t, u["alice"]))
	sub := ws.Subscribe(`subscription($a: ID!) { commentAdded(activity: $a) { id text depth user { id } activity { id } } }`,
		brooktest.Vars{"a": act})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := b.Bus.Stats(); return s > 0 })
	c := comment(t, a, u["bob"], act, "live", "")
	var got struct {
		CommentAdded struct {
			ID, Text string
			Depth    int
			User     struct{ ID string }
			Activity struct{ ID string }
		}
	}
	sub.NextData(&got)
	if got.CommentAdded.ID != c.ID || got.CommentAdded.Text != "live" || got.CommentAdded.User.ID != u["bob"] || got.CommentAdded.Activity.ID != act {
		t.Fatalf("commentAdded: %+v", got)
	}
	r := comment(t, a, u["carol"], act, "reply", c.ID)
	sub.NextData(&got)
	if got.CommentAdded.ID != r.ID || got.CommentAdded.Depth != 2 {
		t.Fatalf("reply: %+v", got)
	}
	sub.Complete()

	// The notification alice got of bob's comment is hers (and bob's, its
	// actor) to read: carol may not watch its comments. (Not just any of
	// her notifications: the one of carol's reply is carol's to read, and
	// which one a bare LIMIT 1 returns depends on which job ran first.)
	a.WaitForJobs(t)
	var note string
	if err := a.Store.DB().QueryRow(t.Context(), `SELECT id::text FROM activities WHERE feed_id = $1 AND actor_id = $2 LIMIT 1`,
		"notification:"+u["alice"], u["bob"]).Scan(&note); err != nil {
		t.Fatal(err)
	}
	other := b.MustDial(t, env.Token(t, u["carol"])).Subscribe(`subscription($a: ID!) { commentAdded(activity: $a) { id } }`, brooktest.Vars{"a": note})
	if m := other.Next(); !strings.Contains(string(m.Payload), "FORBIDDEN") {
		t.Fatalf("subscribing to another's notification: %s %s", m.Type, m.Payload)
	}
}

// A page of activities shows their first comments, with their authors and
// first replies, for the same number of statements whatever its size.
func TestCommentsOnAPageStatements(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "reader", "a")
	var acts []string
	for i := 0; i < 25; i++ {
		act := post(t, n, u["a"], fmt.Sprint("p", i))
		acts = append(acts, act)
		c := comment(t, n, u["reader"], act, "c", "")
		comment(t, n, u["a"], act, "r", c.ID)
	}
	reader := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	q := `query($f: ID!, $n: Int) { feed(id: $f) { activities(first: $n) { edges { node { id commentCount
		comments(first: 2) { edges { node { text user { name } replyCount replies(first: 2) { edges { node { text user { name } } } } } } } } } } } }`
	count := func(size int) int64 {
		reader.Must(t, env.Token(t, u["reader"]), `{ me { id } }`, nil, nil)
		before := reader.Store.Statements()
		var out struct {
			Feed struct {
				Activities struct {
					Edges []struct {
						Node struct {
							CommentCount int
							Comments     struct {
								Edges []struct {
									Node struct {
										Text    string
										User    struct{ Name string }
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
		reader.Must(t, env.Token(t, u["reader"]), q, brooktest.Vars{"f": "user:" + u["a"], "n": size}, &out)
		for _, e := range out.Feed.Activities.Edges {
			cs := e.Node.Comments.Edges
			if e.Node.CommentCount != 2 || len(cs) != 1 || cs[0].Node.Text != "c" || cs[0].Node.User.Name == "" ||
				len(cs[0].Node.Replies.Edges) != 1 {
				t.Fatalf("page of %d: %+v", size, e)
			}
		}
		return reader.Store.Statements() - before
	}
	small, large := count(5), count(25)
	t.Logf("page with comments and replies: %d statements for 5 activities, %d for 25", small, large)
	if small != large {
		t.Fatalf("statements grow with the page: %d for 5, %d for 25", small, large)
	}
}
