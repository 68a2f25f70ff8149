package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CallParticipantState is a participant's track state, as its client
// reports it and hosts force it: a participant starts muted, not sharing.
type CallParticipantState struct {
	AudioMuted    bool `json:"audioMuted"`
	VideoMuted    bool `json:"videoMuted"`
	Screensharing bool `json:"screensharing"`
}

// CallAccess is what a call member's capabilities derive from: the call's
// type and the member's role give the defaults, and Capabilities, once a
// host has granted or revoked any, replace them (nil: the defaults).
type CallAccess struct {
	CallID   string
	CallType string
	UserID   string
	// Role is host, member, or empty for a user who is no member.
	Role         string
	Capabilities []string
	// Defaults are the call type's default permissions for the role (a
	// user who is no member, an admin, counts as host); nil when the type
	// sets none for it.
	Defaults []string
}

// typeDefaults selects a CallAccess's Defaults: the permissions the call
// type (ct) gives the member's role (m; no member counts as host).
const typeDefaults = `ct.permissions -> coalesce(m.role, 'host')`

const participantStateColumns = `audio_muted, video_muted, screensharing`

func scanParticipantWithState(row pgx.Row) (*CallParticipant, error) {
	var p CallParticipant
	st := new(CallParticipantState)
	if err := row.Scan(&p.ID, &p.SessionID, &p.CallID, &p.UserID, &p.JoinedAt, &p.LeftAt,
		&st.AudioMuted, &st.VideoMuted, &st.Screensharing); err != nil {
		return nil, err
	}
	p.KnownState = st
	return &p, nil
}

// CallParticipantStates returns participants' track states, in order, nil
// where no participant has the id.
func (s *Store) CallParticipantStates(ctx context.Context, ids []uuid.UUID) ([]*CallParticipantState, error) {
	rows, err := s.db.Query(ctx, `SELECT `+participantColumns+`, `+participantStateColumns+` FROM call_participants WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: call participant states: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipantWithState(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call participant states: %w", err)
	}
	ordered := inOrder(ids, found, func(p *CallParticipant) uuid.UUID { return p.ID })
	out := make([]*CallParticipantState, len(ids))
	for i, p := range ordered {
		if p != nil {
			out[i] = p.KnownState
		}
	}
	return out, nil
}

// CallParticipantAccess returns, in order, what the capabilities of the
// given participants' users in their calls derive from (nil for unknown
// ids), in one statement.
func (s *Store) CallParticipantAccess(ctx context.Context, ids []uuid.UUID) ([]*CallAccess, error) {
	rows, err := s.db.Query(ctx, `
		SELECT p.id, c.id, c.type, p.user_id, coalesce(m.role, ''), cp.capabilities, `+typeDefaults+`
		FROM call_participants p
		JOIN calls c ON c.id = p.call_id
		LEFT JOIN call_members m ON m.call_id = p.call_id AND m.user_id = p.user_id
		LEFT JOIN call_permissions cp ON cp.call_id = p.call_id AND cp.user_id = p.user_id
		LEFT JOIN call_types ct ON ct.name = c.type
		WHERE p.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: call participant access: %w", err)
	}
	type keyed struct {
		id uuid.UUID
		a  *CallAccess
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyed, error) {
		var k keyed
		k.a = new(CallAccess)
		err := r.Scan(&k.id, &k.a.CallID, &k.a.CallType, &k.a.UserID, &k.a.Role, &k.a.Capabilities, &k.a.Defaults)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: call participant access: %w", err)
	}
	out := make([]*CallAccess, len(ids))
	for _, k := range found {
		for i, id := range ids {
			if id == k.id {
				out[i] = k.a
			}
		}
	}
	return out, nil
}

// CallUserAccess returns what a user's capabilities in a call derive
// from; Role is empty when the user is no member.
func (s *Store) CallUserAccess(ctx context.Context, callID, userID string) (*CallAccess, error) {
	q := `
		SELECT c.id, c.type, $2::text, coalesce(m.role, ''), cp.capabilities, ` + typeDefaults + `
		FROM calls c
		LEFT JOIN call_members m ON m.call_id = c.id AND m.user_id = $2
		LEFT JOIN call_permissions cp ON cp.call_id = c.id AND cp.user_id = $2
		LEFT JOIN call_types ct ON ct.name = c.type
		WHERE c.id = $1`
	a := new(CallAccess)
	err := s.db.QueryRow(ctx, q, callID, userID).Scan(&a.CallID, &a.CallType, &a.UserID, &a.Role, &a.Capabilities, &a.Defaults)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("call", callID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: call user access: %w", err)
	}
	return a, nil
}

// SetCallPermissions records a member's whole set of capabilities in a call.
func (s *Store) SetCallPermissions(ctx context.Context, callID, userID, by string, caps []string) error {
	if caps == nil {
		caps = []string{}
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO call_permissions (call_id, user_id, capabilities, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (call_id, user_id) DO UPDATE SET capabilities = EXCLUDED.capabilities,
			updated_by = EXCLUDED.updated_by, updated_at = now()`, callID, userID, caps, by)
	if err != nil {
		return fmt.Errorf("store: set call permissions: %w", err)
	}
	return nil
}

// UpdateCallParticipantState changes the given parts of a live
// participant's state (nil: unchanged) in one UPDATE, and returns the
// participant with its state; ErrNotFound when it is not live.
func (s *Store) UpdateCallParticipantState(ctx context.Context, id uuid.UUID, audioMuted, videoMuted, screensharing *bool) (*CallParticipant, error) {
	p, err := scanParticipantWithState(s.db.QueryRow(ctx, `
		UPDATE call_participants SET audio_muted = coalesce($2, audio_muted),
			video_muted = coalesce($3, video_muted), screensharing = coalesce($4, screensharing)
		WHERE id = $1 AND left_at IS NULL
		RETURNING `+participantColumns+`, `+participantStateColumns, id, audioMuted, videoMuted, screensharing))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: update call participant state: %w", err)
	}
	return p, nil
}

// CallStateForce says what a host forces on participants.
type CallStateForce struct {
	MuteAudio, MuteVideo, StopScreenshare bool
}

// ForceCallParticipantState mutes (and stops the screen sharing of) the
// live participants of the given users in the call, in one UPDATE, and
// returns those whose state changed, with their new state.
func (s *Store) ForceCallParticipantState(ctx context.Context, callID string, users []string, f CallStateForce) ([]*CallParticipant, error) {
	if !f.MuteAudio && !f.MuteVideo && !f.StopScreenshare {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `
		UPDATE call_participants SET audio_muted = audio_muted OR $3,
			video_muted = video_muted OR $4, screensharing = screensharing AND NOT $5
		WHERE session_id = (SELECT id FROM call_sessions WHERE call_id = $1 AND ended_at IS NULL)
		  AND user_id = ANY($2) AND left_at IS NULL
		  AND (($3 AND NOT audio_muted) OR ($4 AND NOT video_muted) OR ($5 AND screensharing))
		RETURNING `+participantColumns+`, `+participantStateColumns, callID, users, f.MuteAudio, f.MuteVideo, f.StopScreenshare)
	if err != nil {
		return nil, fmt.Errorf("store: force call participant state: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipantWithState(r) })
	if err != nil {
		return nil, fmt.Errorf("store: force call participant state: %w", err)
	}
	return ps, nil
}

// LiveCallParticipantsOf returns the live participants in a call of the
// given users (all users: nil), in join order; with hostsOnly, only those
// of its hosts.
func (s *Store) LiveCallParticipantsOf(ctx context.Context, callID string, users []string, hostsOnly bool) ([]*CallParticipant, error) {
	rows, err := s.db.Query(ctx, `
		SELECT p.id, p.session_id, p.call_id, p.user_id, p.joined_at, p.left_at FROM call_participants p
		WHERE p.session_id = (SELECT id FROM call_sessions WHERE call_id = $1 AND ended_at IS NULL)
		  AND p.left_at IS NULL AND ($2::text[] IS NULL OR p.user_id = ANY($2))
		  AND (NOT $3 OR EXISTS (SELECT 1 FROM call_members m WHERE m.call_id = p.call_id AND m.user_id = p.user_id AND m.role = 'host'))
		ORDER BY p.id`, callID, users, hostsOnly)
	if err != nil {
		return nil, fmt.Errorf("store: live call participants of: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) })
	if err != nil {
		return nil, fmt.Errorf("store: live call participants of: %w", err)
	}
	return ps, nil
}

// LockCallMember locks a member's row in a call (in a transaction): grants
// and revokes lock it for update, state changes share it, so a state
// change never acts on permissions a revoke is replacing. A user who is no
// member has no row; nothing is locked.
func (s *Store) LockCallMember(ctx context.Context, callID, userID string, exclusive bool) error {
	q := `SELECT 1 FROM call_members WHERE call_id = $1 AND user_id = $2 FOR SHARE`
	if exclusive {
		q = `SELECT 1 FROM call_members WHERE call_id = $1 AND user_id = $2 FOR UPDATE`
	}
	rows, err := s.db.Query(ctx, q, callID, userID)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return fmt.Errorf("store: lock call member: %w", err)
	}
	return nil
}
