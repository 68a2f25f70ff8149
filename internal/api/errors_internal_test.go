package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A resolver error that is the operation's own cancellation is not logged
// as an internal error: its client left, or the server is stopping. Any
// other unrecognized resolver error still is, with a request id.
func TestPresentCancelledOperation(t *testing.T) {
	var logged bytes.Buffer
	present := presentError(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError})))
	cases := []struct {
		name      string
		cancelled bool
		err       error
		code      string
		logged    bool
	}{
		{"cancelled with its context", true, fmt.Errorf("bus: subscribe to chat:u:a: %w", context.Canceled), CodeUnavailable, false},
		{"past a deadline", true, fmt.Errorf("store: read: %w", context.DeadlineExceeded), CodeUnavailable, false},
		{"canceled error while the context is live", false, fmt.Errorf("x: %w", context.Canceled), CodeInternal, true},
		{"another error after the context ended", true, errors.New("boom"), CodeInternal, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logged.Reset()
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancelled {
				cancel()
			}
			defer cancel()
			out := present(ctx, &resolverError{err: tc.err})
			if got := out.Extensions["code"]; got != tc.code {
				t.Fatalf("code %v, want %s (%s)", got, tc.code, out.Message)
			}
			if strings.Contains(out.Message, "boom") || strings.Contains(out.Message, "bus:") {
				t.Fatalf("the message shows the error's text: %q", out.Message)
			}
			if got := strings.Contains(logged.String(), "internal error"); got != tc.logged {
				t.Fatalf("logged as internal: %v, want %v (%q)", got, tc.logged, logged.String())
			}
			if tc.code == CodeUnavailable && out.Extensions["retryAfter"] != 1 {
				t.Fatalf("retryAfter %v, want 1", out.Extensions["retryAfter"])
			}
		})
	}
}

// Why a subscription's stream ended is presented as a resolver's error: one
// Brook does not recognize is INTERNAL, logged, its text kept from the
// client (not BAD_USER_INPUT with the text, as for gqlgen's coercion errors).
func TestPresentStreamEndError(t *testing.T) {
	var logged bytes.Buffer
	s := &Server{present: presentError(slog.New(slog.NewTextHandler(&logged, nil)))}
	out := s.presentResolverError(context.Background(), errors.New("store: messages after: canceling statement due to statement timeout"))
	if out.Extensions["code"] != CodeInternal || strings.Contains(out.Message, "statement") {
		t.Fatalf("got %v %q, want INTERNAL without the error's text", out.Extensions["code"], out.Message)
	}
	if !strings.Contains(logged.String(), "statement timeout") {
		t.Fatalf("the error is not in the log: %q", logged.String())
	}
}
