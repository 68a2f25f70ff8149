package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/users"
)

// touchEvery is how often a signed-in user's row is touched (created on
// first use, last_active refreshed): at most once a minute per user per node.
const touchEvery = time.Minute

// authenticator signs requests in: it verifies the token and makes sure the
// user exists, so no resolver runs for a caller without a valid token.
type authenticator struct {
	keys    *auth.Keys
	people  *users.Service
	touched *lru.Cache[string, time.Time]
}

func newAuthenticator(keys *auth.Keys, people *users.Service) *authenticator {
	touched, _ := lru.New[string, time.Time](100_000)
	return &authenticator{keys: keys, people: people, touched: touched}
}

// signIn verifies token and records the user's activity.
func (a *authenticator) signIn(ctx context.Context, token string) (auth.Identity, error) {
	if token == "" {
		return auth.Identity{}, auth.Unauthenticated("sign in: send a token as `Authorization: Bearer <token>` (HTTP) or as authToken in connection_init (WebSocket)")
	}
	id, err := a.keys.Verify(token)
	if err != nil {
		return auth.Identity{}, err
	}
	if store.CheckUserID("user_id", id.UserID) != nil {
		return auth.Identity{}, auth.Unauthenticated("the token's user_id is not a valid user id (1 to 64 letters, digits or _-@.)")
	}
	if last, ok := a.touched.Get(id.UserID); !ok || time.Since(last) > touchEvery {
		if err := a.people.Touch(ctx, id); err != nil {
			return auth.Identity{}, err
		}
		a.touched.Add(id.UserID, time.Now())
	}
	return id, nil
}

// requireToken lets only signed-in HTTP requests through to the GraphQL
// handler; others get a GraphQL error with code UNAUTHENTICATED.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.auth.signIn(r.Context(), auth.FromHeader(r.Header.Get("Authorization")))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if info := requestFrom(r.Context()); info != nil {
			info.setUser(id.UserID)
		}
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}

// writeError answers an HTTP request that never reached GraphQL execution.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	presented := s.present(r.Context(), err)
	status := http.StatusInternalServerError
	switch presented.Extensions["code"] {
	case CodeUnauthenticated:
		status = http.StatusUnauthorized
	case CodeForbidden:
		status = http.StatusForbidden
	case CodeRateLimited:
		status = http.StatusTooManyRequests
		var rl *ephemeral.RateLimitedError
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", retryAfterSeconds(rl.RetryAfter))
		}
	case CodeBadUserInput, CodeComplexity:
		status = http.StatusBadRequest
	case CodeUnavailable:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	var own *statusError
	if errors.As(err, &own) {
		status = own.status
	}
	if info := requestFrom(r.Context()); info != nil {
		code, _ := presented.Extensions["code"].(string)
		info.addCodes([]string{code})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []*gqlerror.Error{presented}})
}

// statusError gives an HTTP refusal a status of its own where its code's
// would mislead (415 for a body of the wrong media type, say); the code
// and message are still the wrapped error's.
type statusError struct {
	err    error
	status int
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// wsState is what Brook knows about one WebSocket connection. It is put in
// the upgrade request's context, where both the connection adapter and the
// connection_init handler find it.
type wsState struct {
	connID string
	user   string
	// expires is when the connection's token expires (zero: never).
	expires time.Time
	// end ends the connection's context; expiry calls it when the token
	// expires.
	end    context.CancelFunc
	expiry *time.Timer
	// operations counts the operations running on the connection.
	operations atomic.Int64
}

type wsStateKey struct{}

func wsStateFrom(ctx context.Context) *wsState {
	st, _ := ctx.Value(wsStateKey{}).(*wsState)
	return st
}

// closeTooManyConnections closes a connection over the per-user cap.
const closeTooManyConnections = 4429

// closeForbidden is the close code for a refused or expired token, as the
// graphql-transport-ws protocol defines it.
const closeForbidden = 4403

// closeTryAgainLater is the WebSocket close code for a server that cannot
// serve the connection now but will soon (RFC 6455's 1013).
const closeTryAgainLater = 1013

// wsRefusal is why a connection_init was refused: the close code and reason.
type wsRefusal struct {
	code   int
	reason string
}

// wsInit authenticates a WebSocket connection from its connection_init
// payload: {"authToken": "<token>"} or {"Authorization": "Bearer <token>"}.
// A bad token is refused with 4403. The connection's context ends when the
// token expires, which closes the connection.
func (s *Server) wsInit(ctx context.Context, payload transport.InitPayload) (context.Context, *wsRefusal) {
	token := payload.GetString("authToken")
	if token == "" {
		token = auth.FromHeader(payload.Authorization())
	}
	id, err := s.auth.signIn(ctx, token)
	if err != nil {
		presented := s.present(ctx, err)
		code, reason := closeForbidden, "Forbidden: "+presented.Message
		switch presented.Extensions["code"] {
		case CodeUnauthenticated:
		case CodeUnavailable:
			// 1013 (try again later): graphql-ws clients reconnect after
			// it, where 4500 would stop them for good.
			code, reason = closeTryAgainLater, presented.Message
		default:
			code, reason = 4500, presented.Message
		}
		return ctx, &wsRefusal{code, reason}
	}
	st := wsStateFrom(ctx)
	if st == nil {
		return ctx, &wsRefusal{4500, "api: websocket state missing"}
	}
	if limit := s.opts.MaxConnectionsPerUser; limit > 0 {
		if open, err := s.opts.State.OpenConnections(ctx, id.UserID); err == nil && open >= limit {
			return ctx, &wsRefusal{closeTooManyConnections, fmt.Sprintf("RATE_LIMITED: user %q already has %d open connections, the limit", id.UserID, open)}
		}
	}
	st.user, st.expires = id.UserID, id.Expires
	if info := requestFrom(ctx); info != nil {
		info.setUser(id.UserID)
	}
	ctx = auth.WithIdentity(ctx, id)
	if !id.Expires.IsZero() && st.end != nil {
		// A timer on the connection's own context, rather than a deadline
		// context under it: one context less for every connection.
		st.expiry = time.AfterFunc(time.Until(id.Expires), st.end)
	}
	s.presence.connect(ctx, st.connID, id.UserID)
	return ctx, nil
}

// wsClose runs when a WebSocket connection ends.
func (s *Server) wsClose(ctx context.Context) {
	st := wsStateFrom(ctx)
	if st == nil {
		return
	}
	if st.expiry != nil {
		st.expiry.Stop()
	}
	if st.user != "" {
		s.presence.disconnect(st.connID, st.user)
	}
}
