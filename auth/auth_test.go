package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func keys(t testing.TB) *Keys {
	k, err := NewKeys([]byte(strings.Repeat("k", MinSecretLen)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueAndVerify(t *testing.T) {
	k := keys(t)
	tok, err := k.Issue("alice", true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Verify(tok)
	if err != nil || id.UserID != "alice" || !id.IsAdmin() || id.Expires.IsZero() {
		t.Fatalf("verify: %+v %v", id, err)
	}
	forever, _ := k.Issue("bob", false, 0)
	if id, err := k.Verify(forever); err != nil || id.Role != RoleUser || !id.Expires.IsZero() {
		t.Fatalf("no-expiry user token: %+v %v", id, err)
	}
	if _, err := NewKeys([]byte("short")); err == nil {
		t.Fatal("a short secret must be refused")
	}
}

// Any string a client sends as a token is either a valid identity or an
// UNAUTHENTICATED refusal that says why; verification never panics.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	good, _ := k.Issue("alice", false, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoiYSJ9.")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := k.Verify(tok)
		if err != nil {
			var reason *ReasonError
			if !errors.Is(err, ErrUnauthenticated) || !errors.As(err, &reason) || reason.Reason == "" {
				t.Fatalf("Verify(%q): %v", tok, err)
			}
			return
		}
		if id.UserID == "" || (id.Role != RoleUser && id.Role != RoleAdmin) {
			t.Fatalf("Verify(%q) accepted %+v", tok, id)
		}
	})
}

func FuzzFromHeader(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer")
	f.Add("  Bearer   x  ")
	f.Fuzz(func(t *testing.T, h string) {
		tok := FromHeader(h)
		if strings.TrimSpace(tok) != tok {
			t.Fatalf("FromHeader(%q) = %q keeps spaces", h, tok)
		}
	})
}
