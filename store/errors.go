package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors of the storage layer. The GraphQL layer maps them to
// client-facing codes in one place; everything else becomes INTERNAL.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request contradicts the current state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the client's input is not acceptable.
	ErrInvalid = errors.New("invalid input")
)

// NotFoundError names what was not found. It matches ErrNotFound.
type NotFoundError struct {
	// What is the kind of thing, like "user" or "channel".
	What string
	// ID is the identifier that was looked up.
	ID string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.What, e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound returns an error saying that the `what` with id does not exist.
func NotFound(what, id string) error { return &NotFoundError{What: what, ID: id} }

// InputError explains why client input was rejected. It matches ErrInvalid.
type InputError struct {
	// Field is the input field at fault, like "first" or "users[2].id".
	Field string
	// Message says what is wrong and what would be right.
	Message string
	// Position, when set, is where in the field's text the fault is (a
	// ranking formula's syntax error).
	Position *Position
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns an InputError for field with a formatted message.
func Invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ConflictError explains a conflict. It matches ErrConflict.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Conflict returns a ConflictError with a formatted message.
func Conflict(format string, args ...any) error {
	return &ConflictError{Message: fmt.Sprintf(format, args...)}
}

// IsUnavailable reports whether err means PostgreSQL could not be reached or
// dropped the connection (a restart, a failover, a network cut), rather
// than that the request was wrong: the same request may well succeed in a
// moment.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down, crashed or starting up.
		// 25006 (read-only transaction): a write reached a server that is a
		// standby, as during a failover before the promotion.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" ||
			pgErr.Code == "25006"
	}
	var netErr *net.OpError
	// ErrConnClosed: a statement on a pooled connection the driver had
	// already closed, as the server died (seen in the failover test).
	return errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || pgconn.Timeout(err)
}
