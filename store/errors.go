package store

import (
	"errors"
	"fmt"
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
