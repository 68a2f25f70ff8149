package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// The feeds' kept counts (Activity.commentCount, Comment.replyCount, the
// reaction counts of activities and comments, followerCount and
// followingCount) and the notifications the comment and reaction jobs
// write, checked against the rows they stand for: after concurrent writes
// from many clients on two nodes (fault 6), and after a worker process is
// killed in the middle of the jobs that notify and backfill (fault 7).

// countMismatches compares every kept count of the feeds with a count of
// the rows it counts, and looks for what must not exist: reactions or
// replies of deleted comments, a request beside the follow it asked for,
// and notifications written twice. It returns what differs (nothing when
// all is exact).
func (c *cluster) countMismatches(t *testing.T) []string {
	t.Helper()
	checks := []struct{ what, sql string }{
		{"Activity.commentCount", `SELECT a.id::text, a.comment_count, count(c.id) FROM activities a
			LEFT JOIN comments c ON c.activity_id = a.id GROUP BY a.id HAVING a.comment_count <> count(c.id)`},
		{"Comment.replyCount", `SELECT p.id::text, p.reply_count, count(c.id) FROM comments p
			LEFT JOIN comments c ON c.parent_id = p.id GROUP BY p.id HAVING p.reply_count <> count(c.id)`},
		{"Comment reaction_count", `SELECT p.id::text, p.reaction_count, count(r.id) FROM comments p
			LEFT JOIN comment_reactions r ON r.comment_id = p.id GROUP BY p.id HAVING p.reaction_count <> count(r.id)`},
		{"Activity.reactionCounts", `SELECT coalesce(k.activity_id, r.activity_id)::text || '/' || coalesce(k.kind, r.kind),
			coalesce(k.count, 0), coalesce(r.n, 0) FROM reaction_counts k
			FULL JOIN (SELECT activity_id, kind, count(*) AS n FROM reactions GROUP BY 1, 2) r
				ON r.activity_id = k.activity_id AND r.kind = k.kind
			WHERE coalesce(k.count, 0) <> coalesce(r.n, 0)`},
		{"Comment.reactionCounts", `SELECT coalesce(k.comment_id, r.comment_id)::text || '/' || coalesce(k.kind, r.kind),
			coalesce(k.count, 0), coalesce(r.n, 0) FROM comment_reaction_counts k
			FULL JOIN (SELECT comment_id, kind, count(*) AS n FROM comment_reactions GROUP BY 1, 2) r
				ON r.comment_id = k.comment_id AND r.kind = k.kind
			WHERE coalesce(k.count, 0) <> coalesce(r.n, 0)`},
		{"Feed.followerCount", `SELECT coalesce(f.id, x.target), coalesce(f.follower_count, 0), coalesce(x.n, 0) FROM feeds f
			FULL JOIN (SELECT target, count(*) AS n FROM follows GROUP BY 1) x ON x.target = f.id
			WHERE coalesce(f.follower_count, 0) <> coalesce(x.n, 0)`},
		{"Feed.followingCount", `SELECT coalesce(f.id, x.source), coalesce(f.following_count, 0), coalesce(x.n, 0) FROM feeds f
			FULL JOIN (SELECT source, count(*) AS n FROM follows GROUP BY 1) x ON x.source = f.id
			WHERE coalesce(f.following_count, 0) <> coalesce(x.n, 0)`},
		{"reactions of deleted comments", `SELECT r.id::text, 1, 0 FROM comment_reactions r
			WHERE NOT EXISTS (SELECT 1 FROM comments c WHERE c.id = r.comment_id)`},
		{"reaction counts of deleted comments", `SELECT k.comment_id::text || '/' || k.kind, k.count, 0 FROM comment_reaction_counts k
			WHERE k.count > 0 AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.id = k.comment_id)`},
		{"replies of deleted comments", `SELECT c.id::text, 1, 0 FROM comments c
			WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM comments p WHERE p.id = c.parent_id)`},
		{"requests beside their follow", `SELECT r.source || ' -> ' || r.target, 1, 0 FROM follow_requests r
			WHERE EXISTS (SELECT 1 FROM follows f WHERE f.source = r.source AND f.target = r.target)`},
		{"notifications written twice", `SELECT feed_id || ' ' || verb || ' ' || object || ' ' || coalesce(target, '') || ' by ' || actor_id,
			count(*), 1 FROM activities WHERE feed_id LIKE 'notification:%' GROUP BY feed_id, verb, object, target, actor_id
			HAVING count(*) > 1`},
	}
	var out []string
	for _, ch := range checks {
		rows, err := c.DB.Query(context.Background(), ch.sql)
		if err != nil {
			t.Fatalf("%s: %v", ch.what, err)
		}
		for rows.Next() {
			var key string
			var kept, counted int64
			if err := rows.Scan(&key, &kept, &counted); err != nil {
				t.Fatalf("%s: %v", ch.what, err)
			}
			if len(out) < 20 {
				out = append(out, fmt.Sprintf("%s of %s: kept %d, rows %d", ch.what, key, kept, counted))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", ch.what, err)
		}
	}
	return out
}

// jobsLeft is how many jobs of the feeds wait or are parked.
func (c *cluster) jobsLeft(t *testing.T) (left, parked int) {
	t.Helper()
	if err := c.DB.QueryRow(context.Background(), `SELECT count(*), count(parked_at) FROM jobs WHERE kind LIKE 'feed.%'`).
		Scan(&left, &parked); err != nil {
		t.Fatal(err)
	}
	return left, parked
}

// notifications counts the notifications of verb in a user's notification
// feed, and the distinct objects they are about.
func (c *cluster) notifications(t *testing.T, user, verb string) (rows, distinct int) {
	t.Helper()
	if err := c.DB.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT (object, actor_id)) FROM activities
		WHERE feed_id = $1 AND verb = $2`, "notification:"+user, verb).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// apiCounts reads an activity's commentCount and reaction counts (kind:
// count) through the API.
func apiCounts(t *testing.T, cl *client.Client, activity string) (int, map[string]int) {
	t.Helper()
	var out struct {
		Activity struct {
			CommentCount   int
			ReactionCounts []struct {
				Kind  string
				Count int
			}
		}
	}
	if err := cl.Run(context.Background(), `query($a: ID!) { activity(id: $a) { commentCount reactionCounts { kind count } } }`,
		client.Vars{"a": activity}, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, rc := range out.Activity.ReactionCounts {
		m[rc.Kind] = rc.Count
	}
	return out.Activity.CommentCount, m
}

// post adds an activity by user to user:<user> and returns its id.
func post(t *testing.T, cl *client.Client, user, object string) string {
	t.Helper()
	var out struct{ AddActivity struct{ ID string } }
	if err := cl.Run(context.Background(), `mutation($f: ID!, $o: String!) { addActivity(feed: $f, input: {verb: "post", object: $o}) { id } }`,
		client.Vars{"f": "user:" + user, "o": object}, &out); err != nil {
		t.Fatal(err)
	}
	return out.AddActivity.ID
}

// Fault 6: 30 clients on two nodes comment, reply, delete comments, react
// to activities and comments and take reactions back, follow and unfollow a
// public feed, and ask to follow a FOLLOWERS feed whose owner accepts and
// rejects requests meanwhile, all at once. Afterwards every kept count is
// the number of its rows, the API answers them, and every comment and
// reaction notified its activity's actor (and the mentioned users) exactly
// once.
func TestFeedCountsUnderConcurrency(t *testing.T) {
	const clients, opsEach = 30, 30
	c := newCluster(t, false)
	env := map[string]string{"BROOK_WORKERS": "2"}
	nodes := []*proc{c.startBrook(t, nil, env), c.startBrook(t, nil, env)}
	ctx := context.Background()
	users := []string{"star", "priv"}
	for i := 0; i < clients; i++ {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	c.users(t, nodes[0], users...)
	star := nodes[0].Client(c.token(t, "star", false))
	priv := nodes[1].Client(c.token(t, "priv", false))
	var acts []string
	for i := 0; i < 3; i++ {
		acts = append(acts, post(t, star, "star", fmt.Sprintf("post %d", i)))
		post(t, priv, "priv", fmt.Sprintf("private post %d", i))
	}
	if err := priv.Run(ctx, `mutation { setFeedVisibility(feed: "user:priv", visibility: FOLLOWERS) { id } }`, nil, nil); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		comments [][2]string         // every comment added (activity, id), deleted or not
		reacted  = map[string]bool{} // "activity/user/kind" of every reaction added
		failures []string
		ops      = map[string]int{}
	)
	fail := func(what, code string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, what+": "+code)
		}
	}
	// ok accepts a success, and NOT_FOUND for what a concurrent delete
	// took away (a comment, or the parent of a reply).
	ok := func(what string, r *client.Response, err error, notFound bool) bool {
		code := codeOf(r, err)
		mu.Lock()
		ops[what]++
		mu.Unlock()
		if code == "" {
			return true
		}
		if !(notFound && code == "NOT_FOUND") {
			fail(what, code)
		}
		return false
	}
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 6))
			me := fmt.Sprintf("u%d", i)
			cl := nodes[i%2].Client(c.token(t, me, false))
			var mine, myReactions, myCommentReactions []string
			for n := 0; n < opsEach; n++ {
				a := acts[rng.IntN(len(acts))]
				switch op := rng.IntN(10); {
				case op < 3: // comment, or reply to any comment so far
					vars := client.Vars{"a": a, "m": []string{fmt.Sprintf("u%d", rng.IntN(clients))}, "p": nil}
					mu.Lock()
					if len(comments) > 0 && rng.IntN(2) == 0 {
						p := comments[rng.IntN(len(comments))]
						vars["a"], vars["p"] = p[0], p[1]
					}
					mu.Unlock()
					r, err := cl.Do(ctx, `mutation($a: ID!, $p: ID, $m: [ID!]) { addComment(activity: $a, text: "hi", parentId: $p, mentionedUserIds: $m) { id } }`, vars)
					// A reply to a comment deleted meanwhile is NOT_FOUND;
					// one too deep is BAD_USER_INPUT.
					if code := codeOf(r, err); code == "BAD_USER_INPUT" || code == "NOT_FOUND" && vars["p"] != nil {
						continue
					}
					if ok("addComment", r, err, false) {
						var out struct{ AddComment struct{ ID string } }
						_ = r.Decode(&out)
						mine = append(mine, out.AddComment.ID)
						mu.Lock()
						comments = append(comments, [2]string{vars["a"].(string), out.AddComment.ID})
						mu.Unlock()
					}
				case op < 4 && len(mine) > 0: // delete one of mine (with its replies)
					k := rng.IntN(len(mine))
					r, err := cl.Do(ctx, `mutation($id: ID!) { deleteComment(id: $id) }`, client.Vars{"id": mine[k]})
					ok("deleteComment", r, err, true)
					mine = slices.Delete(mine, k, k+1)
				case op < 6: // react to an activity
					kind := []string{"like", "love"}[rng.IntN(2)]
					r, err := cl.Do(ctx, `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k) { id } }`, client.Vars{"a": a, "k": kind})
					if ok("addReaction", r, err, false) {
						var out struct{ AddReaction struct{ ID string } }
						_ = r.Decode(&out)
						myReactions = append(myReactions, out.AddReaction.ID)
						mu.Lock()
						reacted[a+"/"+me+"/"+kind] = true
						mu.Unlock()
					}
				case op < 7 && len(myReactions) > 0: // take one back
					k := rng.IntN(len(myReactions))
					r, err := cl.Do(ctx, `mutation($id: ID!) { removeReaction(id: $id) }`, client.Vars{"id": myReactions[k]})
					ok("removeReaction", r, err, false)
					myReactions = slices.Delete(myReactions, k, k+1)
				case op < 8: // react to a comment, or take such a reaction back
					if len(myCommentReactions) > 0 && rng.IntN(2) == 0 {
						k := rng.IntN(len(myCommentReactions))
						r, err := cl.Do(ctx, `mutation($id: ID!) { removeReaction(id: $id) }`, client.Vars{"id": myCommentReactions[k]})
						ok("removeReaction (comment)", r, err, false)
						myCommentReactions = slices.Delete(myCommentReactions, k, k+1)
						continue
					}
					mu.Lock()
					if len(comments) == 0 {
						mu.Unlock()
						continue
					}
					cm := comments[rng.IntN(len(comments))]
					mu.Unlock()
					r, err := cl.Do(ctx, `mutation($c: ID!, $a: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`,
						client.Vars{"a": cm[0], "c": cm[1]})
					// The comment may have been deleted meanwhile.
					if ok("addReaction (comment)", r, err, true) {
						var out struct{ AddReaction struct{ ID string } }
						_ = r.Decode(&out)
						myCommentReactions = append(myCommentReactions, out.AddReaction.ID)
					}
				case op < 9: // follow or unfollow the public feed
					q := `mutation($s: ID!) { follow(source: $s, target: "user:star") { status } }`
					if rng.IntN(2) == 0 {
						q = `mutation($s: ID!) { unfollow(source: $s, target: "user:star") }`
					}
					r, err := cl.Do(ctx, q, client.Vars{"s": "timeline:" + me})
					ok("follow/unfollow", r, err, false)
				default: // ask to follow the FOLLOWERS feed, or stop following it
					q := `mutation($s: ID!) { follow(source: $s, target: "user:priv") { status } }`
					if rng.IntN(3) == 0 {
						q = `mutation($s: ID!) { unfollow(source: $s, target: "user:priv") }`
					}
					r, err := cl.Do(ctx, q, client.Vars{"s": "timeline:" + me})
					ok("follow/unfollow (FOLLOWERS feed)", r, err, false)
				}
			}
		}(i)
	}
	// priv answers requests as they come, accepting most.
	stop := make(chan struct{})
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		rng := rand.New(rand.NewPCG(99, 6))
		for {
			select {
			case <-stop:
				return
			default:
			}
			var out struct {
				Feed struct {
					FollowRequests struct {
						Edges []struct{ Node struct{ ID string } }
					}
				}
			}
			if err := priv.Run(ctx, `{ feed(id: "user:priv") { followRequests(first: 50) { edges { node { id } } } } }`, nil, &out); err != nil {
				fail("followRequests", err.Error())
				return
			}
			for _, e := range out.Feed.FollowRequests.Edges {
				q := `mutation($s: ID!) { acceptFollow(source: $s, target: "user:priv") { status } }`
				if rng.IntN(4) == 0 {
					q = `mutation($s: ID!) { rejectFollow(source: $s, target: "user:priv") }`
				}
				r, err := priv.Do(ctx, q, client.Vars{"s": e.Node.ID})
				// The request may have been withdrawn meanwhile.
				ok("acceptFollow/rejectFollow", r, err, true)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-answered
	if len(failures) > 0 {
		t.Fatalf("operations failed: %s", strings.Join(failures, "; "))
	}

	var state string
	eventually(t, 60*time.Second, "every feeds job done", func() bool {
		left, parked := c.jobsLeft(t)
		state = fmt.Sprintf("%d jobs left, %d parked", left, parked)
		return left == 0
	}, &state)
	if m := c.countMismatches(t); len(m) > 0 {
		t.Fatalf("counts differ from their rows after the concurrent writes:\n%s", strings.Join(m, "\n"))
	}
	// The API answers the same counts, from either node.
	for i, a := range acts {
		var want int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM comments WHERE activity_id = $1`, a).Scan(&want)
		got, reactions := apiCounts(t, nodes[i%2].Client(c.token(t, "star", false)), a)
		for _, kind := range []string{"like", "love"} {
			var n int
			_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM reactions WHERE activity_id = $1 AND kind = $2`, a, kind).Scan(&n)
			if reactions[kind] != n {
				t.Errorf("activity %s: reactionCounts %s %d, %d rows", a, kind, reactions[kind], n)
			}
		}
		if got != want {
			t.Errorf("activity %s: commentCount %d, %d rows", a, got, want)
		}
	}
	var followers struct {
		Feed struct{ FollowerCount, FollowingCount int }
	}
	for _, feed := range []string{"user:star", "user:priv"} {
		if err := nodes[1].Client(c.token(t, strings.TrimPrefix(feed, "user:"), false)).Run(ctx, `query($f: ID!) { feed(id: $f) { followerCount } }`,
			client.Vars{"f": feed}, &followers); err != nil {
			t.Fatal(err)
		}
		var n int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM follows WHERE target = $1`, feed).Scan(&n)
		if followers.Feed.FollowerCount != n {
			t.Errorf("%s: followerCount %d, %d follows", feed, followers.Feed.FollowerCount, n)
		}
	}

	// Notifications: each reaction key added by someone else than the
	// actor once (however often taken back and added again), each comment
	// that still exists once to the actor, each mention once.
	likes, likeObjects := c.notifications(t, "star", "like")
	loves, loveObjects := c.notifications(t, "star", "love")
	var wantLikes, wantLoves int
	for k := range reacted {
		if strings.HasSuffix(k, "/like") {
			wantLikes++
		} else {
			wantLoves++
		}
	}
	if likes != wantLikes || loves != wantLoves || likeObjects != likes || loveObjects != loves {
		t.Fatalf("reaction notifications: %d like (%d distinct), %d love (%d distinct); want %d and %d",
			likes, likeObjects, loves, loveObjects, wantLikes, wantLoves)
	}
	var missing int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM comments c WHERE c.user_id <> 'star' AND (
		SELECT count(*) FROM activities n WHERE n.feed_id = 'notification:star' AND n.verb = 'comment'
			AND n.object = 'comment:' || c.id) <> 1`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	var missingMentions int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM comments c, unnest(c.mentions) m WHERE m <> c.user_id AND m <> 'star' AND (
		SELECT count(*) FROM activities n WHERE n.feed_id = 'notification:' || m AND n.verb = 'mention'
			AND n.object = 'comment:' || c.id) <> 1`).Scan(&missingMentions); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || missingMentions != 0 {
		t.Fatalf("%d comments without exactly one comment notification, %d mentions without exactly one mention notification",
			missing, missingMentions)
	}
	var nComments, nReplies, nReactions, nFollows, nRequests int
	_ = c.DB.QueryRow(ctx, `SELECT (SELECT count(*) FROM comments), (SELECT count(*) FROM comments WHERE parent_id IS NOT NULL),
		(SELECT count(*) FROM reactions) + (SELECT count(*) FROM comment_reactions), (SELECT count(*) FROM follows),
		(SELECT count(*) FROM follow_requests)`).Scan(&nComments, &nReplies, &nReactions, &nFollows, &nRequests)
	t.Logf("fault 6: %d clients on 2 nodes, %d operations (%v); left %d comments (%d replies), %d reactions, %d follows, %d requests: "+
		"every count equal to its rows, %d like and %d love notifications once each, every comment and mention notified once",
		clients, clients*opsEach, ops, nComments, nReplies, nReactions, nFollows, nRequests, likes, loves)
}

// Fault 7: a `brook worker` process is SIGKILLed while its two goroutines
// are inside batches of the jobs that follow comments, reactions and
// accepted follow requests (notifying the activity's actor and the
// mentioned users, and backfilling the new follower's timeline). Another
// worker finishes them: every count is exact, every notification is in
// its feed exactly once and every backfill is complete.
//
// To kill it mid-job deterministically, the test holds (in an open
// transaction) some of the rows those jobs write, spread over the queue:
// the once-only keys of every 7th comment's and reaction's notification
// and a timeline row of every 3rd backfill. Each worker goroutine blocks
// on one of them inside its batch, the batch's other jobs done but not
// committed; then the test kills the process, releases the rows and starts
// another worker.
func TestWorkerKilledMidFeedJobs(t *testing.T) {
	const commenters, requesters, privPosts = 40, 12, 5
	c := newCluster(t, false)
	api := c.startBrook(t, nil, map[string]string{"BROOK_WORKERS": "0"})
	ctx := context.Background()
	users := []string{"star", "priv", "men"}
	for i := 0; i < commenters; i++ {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	for i := 0; i < requesters; i++ {
		users = append(users, fmt.Sprintf("r%d", i))
	}
	c.users(t, api, users...)
	star := api.Client(c.token(t, "star", false))
	priv := api.Client(c.token(t, "priv", false))
	a := post(t, star, "star", "big news")
	if err := priv.Run(ctx, `mutation { setFeedVisibility(feed: "user:priv", visibility: FOLLOWERS) { id } }`, nil, nil); err != nil {
		t.Fatal(err)
	}
	var privActs []string
	for i := 0; i < privPosts; i++ {
		privActs = append(privActs, post(t, priv, "priv", fmt.Sprintf("private %d", i)))
	}

	// The work, with no worker running: its jobs wait in the queue.
	var commentIDs []string
	var reactionKeys []string
	for i := 0; i < commenters; i++ {
		u := fmt.Sprintf("u%d", i)
		cl := api.Client(c.token(t, u, false))
		var out struct{ AddComment struct{ ID string } }
		if err := cl.Run(ctx, `mutation($a: ID!) { addComment(activity: $a, text: "congrats", mentionedUserIds: ["men"]) { id } }`,
			client.Vars{"a": a}, &out); err != nil {
			t.Fatal(err)
		}
		commentIDs = append(commentIDs, out.AddComment.ID)
		kinds := []string{"like"}
		if i%2 == 0 {
			kinds = append(kinds, "love")
		}
		for _, kind := range kinds {
			var r struct{ AddReaction struct{ ID string } }
			if err := cl.Run(ctx, `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k) { id } }`,
				client.Vars{"a": a, "k": kind}, &r); err != nil {
				t.Fatal(err)
			}
			reactionKeys = append(reactionKeys, "reaction:"+kind+":"+a+":"+u)
			if kind == "love" {
				// Taken back and given again: a second job for one key.
				if err := cl.Run(ctx, `mutation($r: ID!) { removeReaction(id: $r) }`, client.Vars{"r": r.AddReaction.ID}, nil); err != nil {
					t.Fatal(err)
				}
				if err := cl.Run(ctx, `mutation($a: ID!) { addReaction(activity: $a, kind: "love") { id } }`, client.Vars{"a": a}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := 0; i < requesters; i++ {
		r := fmt.Sprintf("r%d", i)
		var f struct{ Follow struct{ Status string } }
		if err := api.Client(c.token(t, r, false)).Run(ctx, `mutation($s: ID!) { follow(source: $s, target: "user:priv") { status } }`,
			client.Vars{"s": "timeline:" + r}, &f); err != nil || f.Follow.Status != "PENDING" {
			t.Fatalf("follow of a FOLLOWERS feed: %+v, %v; want PENDING", f, err)
		}
		if err := priv.Run(ctx, `mutation($s: ID!) { acceptFollow(source: $s, target: "user:priv") { status } }`,
			client.Vars{"s": "timeline:" + r}, nil); err != nil {
			t.Fatal(err)
		}
	}
	jobsBefore, _ := c.jobsLeft(t)

	hold, err := c.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	held := 0
	// The first half of the queue is free, so that some batches commit
	// before the goroutines block.
	for i := commenters / 2; i < len(commentIDs); i += 7 {
		if _, err := hold.Exec(ctx, `INSERT INTO feed_notified (feed_id, key) VALUES ('notification:star', $1)`, "comment:"+commentIDs[i]); err != nil {
			t.Fatal(err)
		}
		held++
	}
	for i := len(reactionKeys)/2 + 3; i < len(reactionKeys); i += 7 {
		if _, err := hold.Exec(ctx, `INSERT INTO feed_notified (feed_id, key) VALUES ('notification:star', $1)`, reactionKeys[i]); err != nil {
			t.Fatal(err)
		}
		held++
	}
	for i := 0; i < requesters; i += 3 {
		if _, err := hold.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin) VALUES ($1, $2, 'user:priv')`,
			fmt.Sprintf("timeline:r%d", i), privActs[len(privActs)-1]); err != nil {
			t.Fatal(err)
		}
		held++
	}

	u, _ := url.Parse(c.DatabaseURL)
	q := u.Query()
	q.Set("application_name", "victim")
	u.RawQuery = q.Encode()
	victim := c.startBrook(t, []string{"worker"}, map[string]string{"DATABASE_URL": u.String(), "BROOK_WORKERS": "2"})
	var state string
	eventually(t, 60*time.Second, "both worker goroutines blocked inside a feeds job", func() bool {
		var blocked int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'
			AND state = 'active' AND wait_event_type = 'Lock'
			AND (query LIKE '%INSERT INTO feed_notified%' OR query LIKE '%INSERT INTO feed_entries%')`).Scan(&blocked)
		left, _ := c.jobsLeft(t)
		state = fmt.Sprintf("%d blocked, %d jobs left", blocked, left)
		return blocked == 2
	}, &state)
	notifiedAtKill := c.notificationTotal(t)
	jobsAtKill, _ := c.jobsLeft(t)
	victim.Kill()
	if notifiedAtKill == 0 || jobsAtKill == 0 {
		t.Fatalf("the worker was killed with %d notifications committed and %d jobs left; want it mid-way", notifiedAtKill, jobsAtKill)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the killed worker's sessions are gone", func() bool {
		var n int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'`).Scan(&n)
		return n == 0
	})
	if n := c.notificationTotal(t); n != notifiedAtKill {
		t.Fatalf("%d notifications after the kill, %d before: the killed worker's batches must not commit", n, notifiedAtKill)
	}

	restarted := time.Now()
	c.startBrook(t, []string{"worker"}, map[string]string{"BROOK_WORKERS": "2"})
	eventually(t, 60*time.Second, "the new worker finished the feeds jobs", func() bool {
		left, parked := c.jobsLeft(t)
		state = fmt.Sprintf("%d jobs left, %d parked", left, parked)
		return left == 0
	}, &state)
	took := time.Since(restarted)

	if m := c.countMismatches(t); len(m) > 0 {
		t.Fatalf("counts differ from their rows after the kill:\n%s", strings.Join(m, "\n"))
	}
	wantLoves := (commenters + 1) / 2
	for _, n := range []struct {
		user, verb string
		want       int
	}{{"star", "comment", commenters}, {"men", "mention", commenters}, {"star", "like", commenters}, {"star", "love", wantLoves}} {
		rows, distinct := c.notifications(t, n.user, n.verb)
		if rows != n.want || distinct != n.want {
			t.Errorf("notification:%s has %d %s notifications (%d distinct), want %d once each", n.user, rows, n.verb, distinct, n.want)
		}
	}
	commentCount, reactions := apiCounts(t, star, a)
	if commentCount != commenters || reactions["like"] != commenters || reactions["love"] != wantLoves {
		t.Errorf("the API reads commentCount %d and reactions %v; want %d comments, %d like, %d love",
			commentCount, reactions, commenters, commenters, wantLoves)
	}
	var incomplete int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM generate_series(0, $1 - 1) g WHERE (
		SELECT count(*) FROM feed_entries WHERE feed_id = 'timeline:r' || g AND origin = 'user:priv') <> $2`,
		requesters, privPosts).Scan(&incomplete); err != nil {
		t.Fatal(err)
	}
	var followers struct{ Feed struct{ FollowerCount int } }
	if err := priv.Run(ctx, `{ feed(id: "user:priv") { followerCount } }`, nil, &followers); err != nil {
		t.Fatal(err)
	}
	if incomplete != 0 || followers.Feed.FollowerCount != requesters {
		t.Fatalf("%d of %d accepted followers' timelines without all %d posts; followerCount %d",
			incomplete, requesters, privPosts, followers.Feed.FollowerCount)
	}
	// The API shows a new follower the backfilled posts.
	var tl struct {
		Feed struct {
			Activities struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	if err := api.Client(c.token(t, "r0", false)).Run(ctx, `{ feed(id: "timeline:r0") { activities(first: 10) { edges { node { id } } } } }`,
		nil, &tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Feed.Activities.Edges) != privPosts {
		t.Fatalf("timeline:r0 reads %d activities, want the %d backfilled", len(tl.Feed.Activities.Edges), privPosts)
	}
	t.Logf("fault 7: worker SIGKILLed with both goroutines inside feeds jobs (%d rows held; %d of %d jobs left, %d notifications committed); "+
		"a new worker finished in %s: %d comment, %d mention, %d like and %d love notifications once each, %d backfills complete, counts exact",
		held, jobsAtKill, jobsBefore, notifiedAtKill, took.Round(10*time.Millisecond), commenters, commenters, commenters, wantLoves, requesters)
}

// notificationTotal counts every notification written.
func (c *cluster) notificationTotal(t *testing.T) int {
	t.Helper()
	var n int
	if err := c.DB.QueryRow(context.Background(), `SELECT count(*) FROM activities WHERE feed_id LIKE 'notification:%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
