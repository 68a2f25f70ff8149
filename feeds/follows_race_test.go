package feeds_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// A follow request sent again while its owner's acceptFollow of the first
// one commits must answer with the follow, and leave no request behind it
// (which followRequests would list, and a later acceptFollow would answer
// after an unfollow). The test stands in for acceptFollow with its own
// transaction doing acceptFollow's writes (take the request, write the
// follow) and holds it open while follow runs: follow waits for it. Before
// the fix, follow then wrote a second request and answered PENDING.
func TestFollowRequestRacesAcceptFollow(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "owner", "fan")
	setVisibility(t, n, u["owner"], "FOLLOWERS")
	if st := followStatus(t, n, u["fan"], u["owner"], 0); st != "PENDING" {
		t.Fatalf("first follow: %s, want PENDING", st)
	}
	ctx := context.Background()
	src, dst := "timeline:"+u["fan"], "user:"+u["owner"]
	hold, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	var holder int
	if err := hold.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `DELETE FROM follow_requests WHERE source = $1 AND target = $2`, src, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `INSERT INTO follows (source, target, pull_from) VALUES ($1, $2, gen_random_uuid())`, src, dst); err != nil {
		t.Fatal(err)
	}

	done := make(chan *brooktest.Response, 1)
	go func() {
		done <- n.Query(t, env.Token(t, u["fan"]), `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { status } }`,
			brooktest.Vars{"s": src, "t": dst})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder) == 0 {
		select {
		case r := <-done:
			t.Fatalf("follow did not wait for acceptFollow: %+v", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("follow never waited for acceptFollow")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	var out struct{ Follow struct{ Status string } }
	if err := r.Decode(&out); err != nil || r.Code() != "" {
		t.Fatalf("follow: %v %s", err, r.Code())
	}
	if out.Follow.Status != "ACCEPTED" {
		t.Errorf("follow answered %s while the follow exists, want ACCEPTED", out.Follow.Status)
	}
	if left := n.Count(t, `SELECT count(*) FROM follow_requests WHERE source = $1 AND target = $2`, src, dst); left != 0 {
		t.Errorf("%d requests left beside the follow", left)
	}
}
