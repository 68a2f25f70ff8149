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

// A token verified once is remembered, but its expiry still holds: the
// same token is refused once it has expired, remembered or not.
func TestRememberedTokenStillExpires(t *testing.T) {
	k := keys(t)
	start := time.Now()
	now := start
	k.now = func() time.Time { return now }
	tok, err := k.Issue("alice", false, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Second, time.Minute + leeway - 2*time.Second} {
		now = start.Add(at)
		if id, err := k.Verify(tok); err != nil || id.UserID != "alice" || id.Role != RoleUser {
			t.Fatalf("at +%v: %+v %v", at, id, err)
		}
	}
	if k.verified.Len() != 1 {
		t.Fatalf("%d tokens remembered, want 1", k.verified.Len())
	}
	now = start.Add(time.Minute + leeway + 2*time.Second)
	for i := 0; i < 2; i++ { // remembered, then parsed again
		_, err := k.Verify(tok)
		var reason *ReasonError
		if !errors.Is(err, ErrUnauthenticated) || !errors.As(err, &reason) || !strings.Contains(reason.Reason, "expired") {
			t.Fatalf("expired token, try %d: %v", i, err)
		}
	}
	// A token that differs in its signature is checked, not remembered.
	if _, err := k.Verify(tok[:len(tok)-2] + "xx"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("tampered token: %v", err)
	}
}
