package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Flags: users report a message, a user or an activity; admins, and a
// channel's owners and moderators for its messages, dismiss or act on
// them. A user has at most one open flag per target: flagging it again
// returns that one. Kinds, statuses and actions are stored lowercase.

// MaxFlagReason caps a flag's reason, in characters.
const MaxFlagReason = 500

// FlagTargetKind is what a flag is about.
type FlagTargetKind string

// Flag target kinds.
const (
	FlagMessage  FlagTargetKind = "MESSAGE"
	FlagUser     FlagTargetKind = "USER"
	FlagActivity FlagTargetKind = "ACTIVITY"
)

// MarshalGQL writes the kind as its GraphQL enum value.
func (k FlagTargetKind) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads a GraphQL enum value.
func (k *FlagTargetKind) UnmarshalGQL(v any) error {
	return UnmarshalEnum(k, v, "targetKind", "flag target kind", FlagMessage, FlagUser, FlagActivity)
}

// FlagStatus is where a flag stands.
type FlagStatus string

// Flag statuses.
const (
	// FlagOpen: waiting for a moderator.
	FlagOpen FlagStatus = "OPEN"
	// FlagDismissed: closed without action.
	FlagDismissed FlagStatus = "DISMISSED"
	// FlagResolved: closed by acting on it (DELETE_MESSAGE, BAN_USER).
	FlagResolved FlagStatus = "RESOLVED"
)

// MarshalGQL writes the status as its GraphQL enum value.
func (s FlagStatus) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *FlagStatus) UnmarshalGQL(v any) error {
	return UnmarshalEnum(s, v, "status", "flag status", FlagOpen, FlagDismissed, FlagResolved)
}

// FlagAction is what a moderator does with a flag.
type FlagAction string

// Flag actions.
const (
	FlagDismiss       FlagAction = "DISMISS"
	FlagDeleteMessage FlagAction = "DELETE_MESSAGE"
	FlagBanUser       FlagAction = "BAN_USER"
)

// MarshalGQL writes the action as its GraphQL enum value.
func (a FlagAction) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(a))) }

// UnmarshalGQL reads a GraphQL enum value.
func (a *FlagAction) UnmarshalGQL(v any) error {
	return UnmarshalEnum(a, v, "action", "flag action", FlagDismiss, FlagDeleteMessage, FlagBanUser)
}

// Status is the status of a flag closed with the action.
func (a FlagAction) Status() FlagStatus {
	if a == FlagDismiss {
		return FlagDismissed
	}
	return FlagResolved
}

// FlagTarget names what to flag: exactly one of its fields.
type FlagTarget struct {
	Message  *string
	User     *string
	Activity *string
}

// Flag is a report of a message, a user or an activity.
type Flag struct {
	ID         uuid.UUID
	TargetKind FlagTargetKind
	// TargetID is the message or activity id, or the user id.
	TargetID string
	// ChannelID is a message flag's channel ("" for the others).
	ChannelID string
	// SubjectID is whom the flag is about: the message's author, the
	// user, the activity's actor.
	SubjectID    string
	Reason       *string
	FlaggedByID  string
	Status       FlagStatus
	Action       *FlagAction
	ResolvedByID *string
	ResolvedAt   *time.Time
	CreatedAt    time.Time
}

// TargetUUID is the message or activity id of a flag about one.
func (f *Flag) TargetUUID() (uuid.UUID, bool) {
	if f.TargetKind == FlagUser {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(f.TargetID)
	return id, err == nil
}

// FlagCursor is a flag's position in a list of flags.
func FlagCursor(f *Flag) string { return f.ID.String() }

const flagColumns = `id, target_kind, target_id, channel_id, subject_id, reason, flagged_by, status, action, resolved_by, resolved_at, created_at`

func scanFlag(row pgx.Row) (*Flag, error) {
	var f Flag
	var kind, status string
	var action *string
	err := row.Scan(&f.ID, &kind, &f.TargetID, &f.ChannelID, &f.SubjectID, &f.Reason, &f.FlaggedByID, &status, &action,
		&f.ResolvedByID, &f.ResolvedAt, &f.CreatedAt)
	if err != nil {
		return nil, err
	}
	f.TargetKind, f.Status = FlagTargetKind(strings.ToUpper(kind)), FlagStatus(strings.ToUpper(status))
	if action != nil {
		a := FlagAction(strings.ToUpper(*action))
		f.Action = &a
	}
	return &f, nil
}

func collectFlags(rows pgx.Rows, err error) ([]*Flag, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Flag, error) { return scanFlag(r) })
}

// stored is an enum value as the flags table keeps it.
func stored[E ~string](v E) string { return strings.ToLower(string(v)) }

// AddFlag stores a new open flag (its ID, TargetKind, TargetID,
// ChannelID, SubjectID, Reason and FlaggedByID), or returns the open flag
// its user already has on the target, unchanged.
func (s *Store) AddFlag(ctx context.Context, f Flag) (*Flag, error) {
	if f.Reason != nil {
		if err := CheckText("reason", *f.Reason, MaxFlagReason); err != nil {
			return nil, err
		}
	}
	// The no-op update makes a conflicting insert return the open flag,
	// in the same statement: a concurrent flag of the same target waits
	// for this one and returns it.
	got, err := scanFlag(s.db.QueryRow(ctx, `
		INSERT INTO flags (id, target_kind, target_id, channel_id, subject_id, reason, flagged_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (flagged_by, target_kind, target_id) WHERE status = 'open' DO UPDATE SET status = flags.status
		RETURNING `+flagColumns,
		f.ID, stored(f.TargetKind), f.TargetID, f.ChannelID, f.SubjectID, f.Reason, f.FlaggedByID))
	if err != nil {
		return nil, fmt.Errorf("store: add flag: %w", err)
	}
	return got, nil
}

// Flag returns a flag, or NotFound.
func (s *Store) Flag(ctx context.Context, id uuid.UUID) (*Flag, error) {
	return s.flag(ctx, id, "")
}

// FlagForUpdate returns a flag and locks it until the transaction ends,
// or NotFound.
func (s *Store) FlagForUpdate(ctx context.Context, id uuid.UUID) (*Flag, error) {
	return s.flag(ctx, id, " FOR UPDATE")
}

func (s *Store) flag(ctx context.Context, id uuid.UUID, lock string) (*Flag, error) {
	f, err := scanFlag(s.db.QueryRow(ctx, `SELECT `+flagColumns+` FROM flags WHERE id = $1`+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("flag", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: flag: %w", err)
	}
	return f, nil
}

// CloseFlag closes an open flag with an action, by a user, and returns
// it; Conflict when it is closed already.
func (s *Store) CloseFlag(ctx context.Context, id uuid.UUID, action FlagAction, by string) (*Flag, error) {
	f, err := scanFlag(s.db.QueryRow(ctx, `
		UPDATE flags SET status = $2, action = $3, resolved_by = $4, resolved_at = now()
		WHERE id = $1 AND status = 'open' RETURNING `+flagColumns,
		id, stored(action.Status()), stored(action), by))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Conflict("flag %s is closed already", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: close flag: %w", err)
	}
	return f, nil
}

// closeChannelFlags closes the open flags of a channel's messages as
// acted on (DELETE_MESSAGE) by a user, when the messages go with the
// channel's deletion or truncation: nothing is left for a moderator to do.
func (tx *Store) closeChannelFlags(ctx context.Context, channelID, by string) error {
	_, err := tx.db.Exec(ctx, `
		UPDATE flags SET status = $3, action = $4, resolved_by = $2, resolved_at = now()
		WHERE channel_id = $1 AND status = 'open'`, channelID, by, stored(FlagResolved), stored(FlagDeleteMessage))
	return err
}

// parseFlagCursor is the id to continue after, uuid.Max for the start.
func parseFlagCursor(after string) (uuid.UUID, error) {
	if after == "" {
		return uuid.Max, nil
	}
	id, err := uuid.Parse(after)
	if err != nil {
		return uuid.Nil, Invalid("after", "is not a valid cursor; pass an endCursor from a previous page")
	}
	return id, nil
}

// Flags lists every flag of a status, newest first, first+1 rows after
// the cursor position (FlagCursor; "" for the start).
func (s *Store) Flags(ctx context.Context, status FlagStatus, first int, after string) (Page[*Flag], error) {
	from, err := parseFlagCursor(after)
	if err != nil {
		return Page[*Flag]{}, err
	}
	found, err := collectFlags(s.db.Query(ctx, `
		SELECT `+flagColumns+` FROM flags WHERE status = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		stored(status), from, first+1))
	if err != nil {
		return Page[*Flag]{}, fmt.Errorf("store: flags: %w", err)
	}
	return PageOf(found, first), nil
}

// ModeratedFlags lists the flags of a status of the messages of the
// channels a user owns or moderates (and is not banned from), newest
// first, first+1 rows after the cursor position (FlagCursor; "" for the
// start).
func (s *Store) ModeratedFlags(ctx context.Context, user string, status FlagStatus, first int, after string) (Page[*Flag], error) {
	from, err := parseFlagCursor(after)
	if err != nil {
		return Page[*Flag]{}, err
	}
	found, err := collectFlags(s.db.Query(ctx, `
		SELECT `+flagColumns+` FROM flags
		WHERE status = $2 AND id < $3 AND channel_id IN (
			SELECT m.channel_id FROM channel_members m
			WHERE m.user_id = $1 AND m.role IN ($5, $6) AND `+banOf("m.channel_id", "$1")+` IS NOT FALSE)
		ORDER BY id DESC LIMIT $4`,
		user, stored(status), from, first+1, ChannelRoleOwner, ChannelRoleModerator))
	if err != nil {
		return Page[*Flag]{}, fmt.Errorf("store: moderated flags: %w", err)
	}
	return PageOf(found, first), nil
}
