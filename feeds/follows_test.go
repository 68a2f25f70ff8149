package feeds_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// Following: backfills, counts, and what reading a timeline shows.

func TestFeedPostFollowAndTimeline(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	for i := 1; i <= 3; i++ {
		post(t, n, u["bob"], fmt.Sprintf("old%d", i))
	}
	follow(t, n, u["alice"], u["bob"], 2) // backfills the two newest
	follow(t, n, u["carol"], u["bob"], 0) // backfills nothing
	n.WaitForJobs(t)
	got := feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 25)
	want := []string{u["bob"] + ":old3", u["bob"] + ":old2"}
	if !slices.Equal(got, want) {
		t.Fatalf("backfilled timeline = %v, want %v", got, want)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "timeline:"+u["carol"], 25); len(got) != 0 {
		t.Fatalf("carol's timeline = %v, want empty (activityCopyLimit 0)", got)
	}

	post(t, n, u["bob"], "new1")
	post(t, n, u["carol"], "c1")
	post(t, n, u["bob"], "new2")
	n.WaitForJobs(t)
	got = feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 2) // three pages
	want = []string{u["bob"] + ":new2", u["bob"] + ":new1", u["bob"] + ":old3", u["bob"] + ":old2"}
	if !slices.Equal(got, want) {
		t.Fatalf("timeline = %v, want %v", got, want)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "user:"+u["bob"], 25); len(got) != 5 {
		t.Fatalf("user feed has %d activities, want 5", len(got))
	}

	var counts struct {
		Bob struct {
			FollowerCount, FollowingCount int
			Followers                     struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		Alice struct {
			FollowingCount int
			Following      struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	n.Must(t, env.Token(t, u["alice"]), `query($b: ID!, $a: ID!) {
		bob: feed(id: $b) { followerCount followingCount followers { edges { node { id } } } }
		alice: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"b": "user:" + u["bob"], "a": "timeline:" + u["alice"]}, &counts)
	if counts.Bob.FollowerCount != 2 || counts.Bob.FollowingCount != 0 || len(counts.Bob.Followers.Edges) != 2 ||
		counts.Alice.FollowingCount != 1 || counts.Alice.Following.Edges[0].Node.ID != "user:"+u["bob"] {
		t.Fatalf("follow counts: %+v", counts)
	}
	// Following again changes nothing.
	follow(t, n, u["alice"], u["bob"], 100)
	n.WaitForJobs(t)
	n.Must(t, env.Token(t, u["alice"]), `query($b: ID!, $a: ID!) {
		bob: feed(id: $b) { followerCount followingCount followers { edges { node { id } } } }
		alice: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"b": "user:" + u["bob"], "a": "timeline:" + u["alice"]}, &counts)
	if counts.Bob.FollowerCount != 2 {
		t.Fatalf("follower count after a repeated follow = %d, want 2", counts.Bob.FollowerCount)
	}
}

func TestFeedRemoveAndUnfollow(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	follow(t, n, u["alice"], u["bob"], 100)
	follow(t, n, u["carol"], u["bob"], 100)
	a1 := post(t, n, u["bob"], "one")
	post(t, n, u["bob"], "two")
	n.WaitForJobs(t)

	bob := env.Token(t, u["bob"])
	n.Must(t, bob, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": a1}, nil)
	brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": a1}), "NOT_FOUND")
	n.WaitForJobs(t)
	for _, f := range []struct{ user, feed string }{{u["alice"], "timeline:" + u["alice"]}, {u["carol"], "timeline:" + u["carol"]}, {u["bob"], "user:" + u["bob"]}} {
		if got := feedObjects(t, n, env.Token(t, f.user), f.feed, 25); !slices.Equal(got, []string{u["bob"] + ":two"}) {
			t.Fatalf("%s after removal = %v", f.feed, got)
		}
	}
	var entries int
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM feed_entries WHERE activity_id = $1`, a1).Scan(&entries)
	if entries != 0 {
		t.Fatalf("%d entries of a removed activity remain", entries)
	}

	if !unfollow(t, n, u["alice"], u["bob"], false) {
		t.Fatal("unfollow reported no follow")
	}
	if unfollow(t, n, u["alice"], u["bob"], false) {
		t.Fatal("a second unfollow reported a follow")
	}
	unfollow(t, n, u["carol"], u["bob"], true)
	post(t, n, u["bob"], "three")
	n.WaitForJobs(t)
	if got := feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 25); len(got) != 0 {
		t.Fatalf("alice's timeline after unfollow = %v, want empty", got)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "timeline:"+u["carol"], 25); !slices.Equal(got, []string{u["bob"] + ":two"}) {
		t.Fatalf("carol's timeline after unfollow with keepHistory = %v", got)
	}
}
