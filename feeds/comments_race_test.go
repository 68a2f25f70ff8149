package feeds_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// A reaction to a comment that a deleteComment is deleting must not be
// written beside the gone comment. The test stands in for deleteComment
// with its own transaction, doing what deleteComment does in its order
// (delete the comment, then its reactions and their counts), and holds it
// open while addReaction runs: addReaction waits for it and answers
// NOT_FOUND, and no reaction or count of the comment is left. Before the
// fix, addReaction's EXISTS check saw the comment not yet deleted, wrote
// the reaction, and left it (with its count) behind once deleteComment
// committed.
func TestCommentReactionRacesDeleteComment(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	act := post(t, n, u["alice"], "race")
	c := comment(t, n, u["bob"], act, "doomed", "")
	ctx := context.Background()

	hold, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	var holder int
	if err := hold.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `DELETE FROM comments WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}

	done := make(chan *brooktest.Response, 1)
	go func() {
		done <- n.Query(t, env.Token(t, u["carol"]), `mutation($a: ID!, $c: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`,
			brooktest.Vars{"a": act, "c": c.ID})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder) == 0 {
		select {
		case r := <-done:
			t.Fatalf("addReaction did not wait for the comment's deletion: %+v", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("addReaction never waited for the comment's deletion")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := hold.Exec(ctx, `DELETE FROM comment_reactions WHERE comment_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `DELETE FROM comment_reaction_counts WHERE comment_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if code := r.Code(); code != "NOT_FOUND" {
		t.Fatalf("addReaction to a comment deleted meanwhile: %q, want NOT_FOUND", code)
	}
	left := n.Count(t, `SELECT (SELECT count(*) FROM comment_reactions WHERE comment_id = $1)
		+ (SELECT count(*) FROM comment_reaction_counts WHERE comment_id = $1)`, c.ID)
	if left != 0 {
		t.Fatalf("%d reaction rows of the deleted comment left", left)
	}
}
