package feeds_test

import (
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// What a pending follower of a FOLLOWERS feed reaches of it by other ways
// than reading it: nothing. Its bookmarks of the feed's activities (saved
// while the feed was public) leave its list, search finds none of them,
// and a mention in a follower's comment does not notify it (the
// notification would carry the comment's text); the accepted follower
// keeps all three.
func TestFollowersFeedNotReachedByPendingFollower(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "owner", "fan", "pend")
	a := post(t, n, u["owner"], "zanzibar holiday")
	for _, who := range []string{"fan", "pend"} {
		n.Must(t, env.Token(t, u[who]), `mutation($a: ID!) { bookmark(activity: $a) { createdAt } }`, brooktest.Vars{"a": a}, nil)
	}
	setVisibility(t, n, u["owner"], "FOLLOWERS")
	for _, who := range []string{"fan", "pend"} {
		if st := followStatus(t, n, u[who], u["owner"], 10); st != "PENDING" {
			t.Fatalf("%s's follow: %s, want PENDING", who, st)
		}
	}
	if code := answer(t, n, env.Token(t, u["owner"]), "acceptFollow", u["fan"], u["owner"]).Code(); code != "" {
		t.Fatal(code)
	}
	comment(t, n, u["fan"], a, "see you there", "", u["pend"], u["owner"])
	n.WaitForJobs(t)

	for who, want := range map[string]string{"fan": "/zanzibar holiday", "pend": ""} {
		tok := env.Token(t, u[who])
		if got := strings.Join(bookmarks(t, n, tok, nil, 25), ","); got != want {
			t.Errorf("%s's bookmarks: %q, want %q", who, got, want)
		}
		found := strings.Join(search(t, n, tok, brooktest.Vars{"q": "zanzibar"}), ",")
		if want := map[string]string{"fan": "zanzibar holiday", "pend": ""}[who]; found != want {
			t.Errorf("%s's search: %q, want %q", who, found, want)
		}
	}
	if got := n.Count(t, `SELECT count(*) FROM activities WHERE feed_id = $1 AND verb = 'mention'`, "notification:"+u["pend"]); got != 0 {
		t.Errorf("the pending follower got %d mention notifications of a comment it may not read", got)
	}
	// The owner is notified of the comment (as the actor, not as mentioned).
	if got := n.Count(t, `SELECT count(*) FROM activities WHERE feed_id = $1 AND verb = 'comment'`, "notification:"+u["owner"]); got != 1 {
		t.Errorf("the owner got %d comment notifications, want 1", got)
	}
}
