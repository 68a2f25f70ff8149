package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// The codes a client sees in extensions.code. This file is the one place
// where errors are given client-facing codes.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeConflict        = "CONFLICT"
	CodeRateLimited     = "RATE_LIMITED"
	// CodeCallFull means a call's session holds as many participants as
	// its call type allows (extensions.maxParticipants): join later.
	CodeCallFull   = "CALL_FULL"
	CodeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeInternal   = "INTERNAL"
	// CodeUnavailable means PostgreSQL or Redis could not be reached (the
	// message says which): try again shortly (retryAfter says when).
	CodeUnavailable = "UNAVAILABLE"
	// CodePersistedQueryNotFound is part of the APQ protocol: it tells the
	// client to resend the operation with its text.
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
)

// RetryAfterError is an error after which the client should wait before
// trying again. It maps to RATE_LIMITED with a retryAfter hint in whole
// seconds, the same number as the Retry-After header of an HTTP refusal.
type RetryAfterError interface {
	error
	RetryAfterSeconds() int
}

// errAtConnectionCap refuses a request that arrived on a connection past
// the server's total connection cap.
var errAtConnectionCap = errors.New("the server holds as many connections as it may (BROOK_MAX_CONNECTIONS); try again shortly")

// classify picks the code and the client-safe message for an error that
// came from Brook's own code.
func classify(err error) (code, message string, ext map[string]any) {
	var (
		reason   *auth.ReasonError
		input    *store.InputError
		notFound *store.NotFoundError
		conflict *store.ConflictError
		retry    RetryAfterError
		capped   *limitExceeded
		full     *store.CallFullError
	)
	switch {
	case errors.As(err, &full):
		return CodeCallFull, full.Error(), map[string]any{"maxParticipants": full.Max}
	case errors.As(err, &capped):
		return CodeRateLimited, capped.Error(), nil
	case errors.As(err, &retry):
		return CodeRateLimited, retry.Error(), map[string]any{"retryAfter": retry.RetryAfterSeconds()}
	case errors.Is(err, auth.ErrUnauthenticated):
		if errors.As(err, &reason) {
			return CodeUnauthenticated, reason.Reason, nil
		}
		return CodeUnauthenticated, "sign in: send a valid token", nil
	case errors.Is(err, auth.ErrForbidden):
		if errors.As(err, &reason) {
			return CodeForbidden, reason.Reason, nil
		}
		return CodeForbidden, "you may not do this", nil
	case errors.As(err, &input):
		ext := map[string]any{}
		if input.Field != "" {
			ext["field"] = input.Field
		}
		if input.Position != nil {
			ext["position"] = map[string]any{"line": input.Position.Line, "column": input.Position.Column}
		}
		return CodeBadUserInput, input.Error(), ext
	case errors.As(err, &notFound):
		return CodeNotFound, notFound.Error(), nil
	case errors.As(err, &conflict):
		return CodeConflict, conflict.Error(), nil
	case errors.Is(err, store.ErrNotFound):
		return CodeNotFound, "not found", nil
	case errors.Is(err, store.ErrInvalid):
		return CodeBadUserInput, "invalid input", nil
	case errors.Is(err, store.ErrConflict):
		return CodeConflict, "conflict", nil
	case errors.Is(err, errAtConnectionCap):
		return CodeUnavailable, errAtConnectionCap.Error(), map[string]any{"retryAfter": 1}
	case errors.Is(err, redisguard.ErrUnavailable):
		// Checked before the database: a broken Redis connection is a
		// network error too.
		return CodeUnavailable, "the service is briefly unavailable (Redis, which carries live events, could not be reached; PostgreSQL answers the rest); try again", map[string]any{"retryAfter": 1}
	case errors.Is(err, webhooks.ErrBeforeSendUnavailable):
		return CodeUnavailable, "the message was not sent: the app's before-send check did not answer; try again", map[string]any{"retryAfter": 1}
	case store.IsUnavailable(err):
		return CodeUnavailable, "the service is briefly unavailable (PostgreSQL, its database, could not be reached); try again", map[string]any{"retryAfter": 1}
	case errors.Is(err, bus.ErrSlowSubscriber):
		return CodeRateLimited, "this subscription fell behind and was ended: events arrived faster than the client read them; subscribe again (streams with an `after` argument resume where you left off)", nil
	}
	return CodeInternal, "", nil
}

// resolverError marks an error returned by a resolver, so the presenter can
// tell it from one gqlgen raised while coercing arguments (which the client
// caused). An unrecognized resolver error is INTERNAL; an unrecognized
// coercion error is BAD_USER_INPUT.
type resolverError struct{ err error }

func (e *resolverError) Error() string { return e.err.Error() }
func (e *resolverError) Unwrap() error { return e.err }

// presentResolverError presents an error a resolver reports outside its
// return value (why a subscription's stream ended), as the field
// middleware would have tagged it: an error Brook does not recognize is
// INTERNAL and logged, never shown to the client as its own mistake.
func (s *Server) presentResolverError(ctx context.Context, err error) *gqlerror.Error {
	return s.present(ctx, &resolverError{err: err})
}

// markResolverErrors is the field middleware that tags resolver errors.
func markResolverErrors(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	if err != nil {
		err = &resolverError{err: err}
	}
	return res, err
}

// presentError turns any error into the GraphQL error the client sees.
// Errors Brook does not recognize become INTERNAL: their text (which may
// hold SQL or driver details) goes only to the log, with the request id the
// client gets to quote.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if !errors.As(err, &gqlErr) {
			gqlErr = gqlerror.WrapPath(graphql.GetPath(ctx), err)
		}
		out := *gqlErr
		out.Err = nil
		out.Extensions = map[string]any{}
		for k, v := range gqlErr.Extensions {
			out.Extensions[k] = v
		}
		inner := gqlErr.Unwrap()
		if inner == nil {
			// Raised by gqlgen itself: parsing, validation, limits, APQ.
			switch gqlErr.Extensions["code"] {
			case CodeComplexity, CodePersistedQueryNotFound, CodeBadUserInput, CodeRateLimited:
			case errcode.ParseFailed, errcode.ValidationFailed:
				out.Extensions["reason"] = gqlErr.Extensions["code"]
				out.Extensions["code"] = CodeBadUserInput
			default:
				out.Extensions["code"] = CodeBadUserInput
			}
			return &out
		}
		code, message, ext := classify(inner)
		var (
			fromResolver *resolverError
			panicked     *internalPanic
		)
		isBug := errors.As(inner, &panicked) || errors.Is(inner, graphql.ErrInvalidNull)
		if code == CodeInternal && !isBug && !errors.As(inner, &fromResolver) {
			// gqlgen could not coerce an argument (an Int out of range, say):
			// its message names the argument and is safe to show.
			out.Extensions["code"] = CodeBadUserInput
			return &out
		}
		if code == CodeInternal && !isBug && ctx.Err() != nil &&
			(errors.Is(inner, context.Canceled) || errors.Is(inner, context.DeadlineExceeded)) {
			// The operation's client left (it closed the connection,
			// completed the subscription or dropped the request), its
			// token expired (which ends the connection), or the server is
			// shutting down: no fault of Brook's to log as one, and trying
			// again is the advice.
			log.Debug("operation cancelled", "request_id", RequestID(ctx), "path", gqlErr.Path.String(), "err", inner)
			code, message = CodeUnavailable, "the operation was cancelled: its request or connection ended, or the server is shutting down; try again"
			ext = map[string]any{"retryAfter": 1}
		}
		if code == CodeInternal || isBug {
			id := RequestID(ctx)
			log.Error("internal error", "request_id", id, "path", gqlErr.Path.String(), "err", inner)
			code, message = CodeInternal, "internal error; quote request id "+id+" when reporting it"
			out.Extensions["requestId"] = id
		}
		out.Message = message
		out.Extensions["code"] = code
		for k, v := range ext {
			out.Extensions[k] = v
		}
		return &out
	}
}

// internalPanic is a recovered panic; it is always INTERNAL.
type internalPanic struct{ value any }

func (p *internalPanic) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// recoverPanic turns a panic in a resolver into an INTERNAL error and logs
// its stack.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.Error("panic in resolver", "request_id", RequestID(ctx), "panic", v, "stack", string(debug.Stack()))
		return &internalPanic{value: v}
	}
}

// withErrorCodes makes sure every error response of /query carries a code.
// gqlgen's transports answer some malformed requests themselves (a mutation
// over GET, an undecodable body, an unsupported content type) without
// passing through the error presenter; those are the client's doing, so
// they get BAD_USER_INPUT.
func withErrorCodes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&codingWriter{ResponseWriter: w}, r)
	})
}

// codingWriter holds back only error responses (status 400 and up), adds
// the missing codes and cuts overlong messages.
type codingWriter struct {
	http.ResponseWriter
	status int
}

func (c *codingWriter) WriteHeader(status int) {
	if c.status != 0 {
		return
	}
	c.status = status
	if status < 400 {
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *codingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.status < 400 {
		return c.ResponseWriter.Write(b)
	}
	// gqlgen writes an error response in one call; finish it now. Nothing
	// is held across calls, so there is no buffer to bound: even an
	// answer that quotes a whole 1 MiB body, escaped to twice that, is
	// parsed and cut short rather than dropped.
	c.flushError(b)
	return len(b), nil
}

// maxErrorMessage caps the message of an error response: gqlgen quotes a
// body it cannot decode whole, and an answer as large as the request helps
// no one.
const maxErrorMessage = 300

func (c *codingWriter) flushError(body []byte) {
	var resp struct {
		Errors []map[string]any `json:"errors"`
		Data   json.RawMessage  `json:"data,omitempty"`
	}
	if json.Unmarshal(body, &resp) == nil && len(resp.Errors) > 0 {
		changed := false
		for _, e := range resp.Errors {
			ext, _ := e["extensions"].(map[string]any)
			if ext == nil {
				ext = map[string]any{}
				e["extensions"] = ext
			}
			if _, ok := ext["code"]; !ok {
				ext["code"] = CodeBadUserInput
				changed = true
			}
			if msg, _ := e["message"].(string); len(msg) > maxErrorMessage {
				e["message"] = truncateUTF8(msg, maxErrorMessage) + "…"
				changed = true
			}
		}
		if changed {
			if b, err := json.Marshal(resp); err == nil {
				body = b
			}
		}
	}
	c.ResponseWriter.Header().Del("Content-Length")
	c.ResponseWriter.WriteHeader(c.status)
	_, _ = c.ResponseWriter.Write(body)
	c.status = http.StatusOK // later writes pass through
}

// Hijack lets WebSocket upgrades through the wrapper.
func (c *codingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := c.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("api: connection cannot be hijacked")
	}
	return h.Hijack()
}

// Flush lets streaming responses through the wrapper.
func (c *codingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
