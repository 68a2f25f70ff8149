package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/client"
)

var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// sign makes a token with arbitrary claims and secret, as a client (or an
// attacker) could.
func sign(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// badTokens are tokens every transport must refuse, with a word the
// refusal's message must contain.
func badTokens(t *testing.T) []struct{ name, token, says string } {
	hour := time.Now().Add(time.Hour).Unix()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"user_id": "mallory", "role": "admin"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return []struct{ name, token, says string }{
		{"missing", "", "sign in"},
		{"garbage", "not-a-jwt", "malformed"},
		{"expired", sign(t, brooktest.Secret, jwt.MapClaims{"user_id": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), "expired"},
		{"wrong secret", sign(t, "another-secret-another-secret-0123456789", jwt.MapClaims{"user_id": "alice", "exp": hour}), "signature"},
		{"alg none", none, "signature"},
		{"no user_id", sign(t, brooktest.Secret, jwt.MapClaims{"exp": hour}), "user_id"},
		{"bad user_id", sign(t, brooktest.Secret, jwt.MapClaims{"user_id": "a:b", "exp": hour}), "user_id"},
		{"unknown role", sign(t, brooktest.Secret, jwt.MapClaims{"user_id": "alice", "role": "root", "exp": hour}), "role"},
	}
}

func TestHTTPRefusesBadTokens(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	for _, bad := range badTokens(t) {
		t.Run(bad.name, func(t *testing.T) {
			for _, r := range []*brooktest.Response{
				n.Query(t, bad.token, `{ me { id } }`, nil),
				n.Get(t, bad.token, `{ me { id } }`),
			} {
				if r.Status != 401 || r.Code() != "UNAUTHENTICATED" {
					t.Fatalf("status %d code %q, want 401 UNAUTHENTICATED", r.Status, r.Code())
				}
				if !strings.Contains(r.Errors[0].Message, bad.says) {
					t.Fatalf("message %q does not say %q", r.Errors[0].Message, bad.says)
				}
				if r.Data != nil && string(r.Data) != "null" {
					t.Fatalf("data leaked: %s", r.Data)
				}
			}
		})
	}
}

func TestWebsocketRefusesBadTokensWith4403(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	for _, bad := range badTokens(t) {
		t.Run(bad.name, func(t *testing.T) {
			_, err := n.Dial(t, brooktest.AuthPayload(bad.token))
			var ce *client.CloseError
			if !errors.As(err, &ce) || ce.Code != 4403 {
				t.Fatalf("dial: %v, want close 4403", err)
			}
			if !strings.Contains(ce.Text, bad.says) {
				t.Fatalf("close reason %q does not say %q", ce.Text, bad.says)
			}
		})
	}
}

func TestWebsocketAcceptsBothPayloadStyles(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "payload-styles")
	for _, payload := range []map[string]any{
		{"authToken": tok},
		{"Authorization": "Bearer " + tok},
	} {
		ws, err := n.Dial(t, payload)
		if err != nil {
			t.Fatal(err)
		}
		op := ws.Subscribe(`{ me { id } }`, nil)
		var got struct{ Me struct{ ID string } }
		op.NextData(&got)
		if got.Me.ID != "payload-styles" {
			t.Fatalf("me over websocket: %+v", got)
		}
		op.Expect("complete")
	}
}

func TestTokenExpiryEndsWebsocketSession(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := sign(t, brooktest.Secret, jwt.MapClaims{"user_id": "shortlived", "exp": time.Now().Add(2 * time.Second).Unix()})
	ws := n.MustDial(t, tok)
	sub := ws.Subscribe(`subscription { userUpdated(id: "shortlived") { id } }`, nil)
	code, text := ws.WaitClosed(10 * time.Second)
	if code != 4403 || !strings.Contains(text, "expired") {
		t.Fatalf("close %d %q, want 4403 saying the token expired", code, text)
	}
	if m := sub.Next(); m.Type != "closed" {
		t.Fatalf("subscription got %s after the session ended", m.Type)
	}
}

func TestFirstUseCreatesUser(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	var got struct {
		Me struct {
			ID, Role   string
			LastActive *time.Time
		}
	}
	n.Must(t, env.Token(t, "newcomer"), `{ me { id role lastActive } }`, nil, &got)
	if got.Me.ID != "newcomer" || got.Me.Role != "user" || got.Me.LastActive == nil {
		t.Fatalf("me: %+v", got.Me)
	}
	n.Must(t, env.AdminToken(t, "ops-bot"), `{ me { id role } }`, nil, &got)
	if got.Me.Role != "admin" {
		t.Fatalf("admin token created role %q", got.Me.Role)
	}
	var rows int
	if err := n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM users WHERE id IN ('newcomer', 'ops-bot')`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("user rows: %d, %v", rows, err)
	}
}

func TestRoles(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	upsert := `mutation($id: ID!) { upsertUsers(users: [{id: $id, name: "Named"}]) { id name } }`
	// A user token may upsert only itself: the wrong role for others.
	if r := n.Query(t, env.Token(t, "carol"), upsert, brooktest.Vars{"id": "dave"}); r.Code() != "FORBIDDEN" {
		t.Fatalf("user upserting another: %+v", r.Errors)
	}
	if r := n.Query(t, env.Token(t, "carol"), upsert, brooktest.Vars{"id": "carol"}); r.Code() != "" {
		t.Fatalf("user upserting itself: %+v", r.Errors)
	}
	if r := n.Query(t, env.AdminToken(t, "ops"), upsert, brooktest.Vars{"id": "dave"}); r.Code() != "" {
		t.Fatalf("admin upserting another: %+v", r.Errors)
	}
	var dave *string
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT name FROM users WHERE id = 'dave'`).Scan(&dave)
	if dave == nil || *dave != "Named" {
		t.Fatalf("dave's name: %v", dave)
	}
}

func TestIdentityHelpers(t *testing.T) {
	if _, err := auth.Caller(context.Background()); err == nil {
		t.Fatal("no identity in context must be an error")
	}
	if got := auth.FromHeader("Bearer abc "); got != "abc" {
		t.Fatalf("FromHeader: %q", got)
	}
	if got := auth.FromHeader("bearer   xyz"); got != "xyz" {
		t.Fatalf("FromHeader lower case: %q", got)
	}
}
