package calls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Permissions and participant state (issue 20). A member's capabilities
// in a call come from defaultPermissions until a host grants or revokes
// one; then call_permissions holds the member's whole set. A participant's
// track state is on its row. Every change is a callEvents event; these
// rare events travel as JSON, which DecodeEvent reads beside the binary
// form the signaling path uses, so the hot path's codec stays as it is.

// CallPermission is what a participant may do with media in a call.
type CallPermission string

// Capabilities.
const (
	SendAudio   CallPermission = "SEND_AUDIO"
	SendVideo   CallPermission = "SEND_VIDEO"
	Screenshare CallPermission = "SCREENSHARE"
)

// allCapabilities in their order of presentation.
var allCapabilities = []CallPermission{SendAudio, SendVideo, Screenshare}

// MarshalGQL writes the capability as a GraphQL enum value.
func (c CallPermission) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(c))) }

// UnmarshalGQL reads a GraphQL enum value.
func (c *CallPermission) UnmarshalGQL(v any) error {
	return store.UnmarshalEnum(c, v, "permissions", "permission", allCapabilities...)
}

// Types of the permission, state and custom events.
const (
	// EventPermissionRequested goes to the hosts' participants only.
	EventPermissionRequested = "permission.requested"
	EventPermissionsUpdated  = "permissions.updated"
	EventParticipantUpdated  = "participant.updated"
	EventCustom              = "custom"
)

// CallCustomEvent is what sendCallEvent broadcasts: an app-defined type (a
// reaction, say) and its data.
type CallCustomEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Limits of custom events.
const (
	// MaxCustomEventData caps a custom event's data: 4 KB.
	MaxCustomEventData = 4 << 10
	// MaxCustomEventType caps its type.
	MaxCustomEventType = 64
)

// DefaultEventRate is how many custom events one participant may send:
// 10 a second, bursts of 20 (a flurry of reactions passes, a loop not).
var DefaultEventRate = ephemeral.Rate{Rate: 10, Period: time.Second, Burst: 20}

// builtinPermissions are a role's capabilities when its call type sets
// none for it: hosts and members send audio, video and their screen,
// viewers nothing. An admin who joins without being a member (role "")
// counts as a host.
func builtinPermissions(role string) []CallPermission {
	switch role {
	case store.CallRoleHost, store.CallRoleMember, "":
		return slices.Clone(allCapabilities)
	default:
		return nil
	}
}

// effective returns a member's capabilities, in the order of
// allCapabilities: the set a host recorded, else its call type's defaults
// for its role (upsertCallType), else the built-in ones.
func (s *Service) effective(a *store.CallAccess) []CallPermission {
	set := a.Capabilities
	if set == nil {
		set = a.Defaults
	}
	if set == nil {
		return builtinPermissions(a.Role)
	}
	out := make([]CallPermission, 0, len(set))
	for _, c := range allCapabilities {
		if slices.Contains(set, string(c)) {
			out = append(out, c)
		}
	}
	return out
}

// ParticipantPermissions returns participants' capabilities, in order
// (nil for unknown ids): a batch for the loaders.
func (s *Service) ParticipantPermissions(ctx context.Context, ids []uuid.UUID) ([][]CallPermission, error) {
	access, err := s.store.CallParticipantAccess(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([][]CallPermission, len(ids))
	for i, a := range access {
		if a != nil {
			out[i] = s.effective(a)
		}
	}
	return out, nil
}

// ParticipantStates returns participants' track states, in order (nil
// for unknown ids): a batch for the loaders.
func (s *Service) ParticipantStates(ctx context.Context, ids []uuid.UUID) ([]*store.CallParticipantState, error) {
	return s.store.CallParticipantStates(ctx, ids)
}

// checkCapabilities checks a list of capabilities and returns it without
// repeats, in the order of allCapabilities.
func checkCapabilities(caps []CallPermission) ([]CallPermission, error) {
	if len(caps) == 0 {
		return nil, store.Invalid("permissions", "name at least one of SEND_AUDIO, SEND_VIDEO, SCREENSHARE")
	}
	out := make([]CallPermission, 0, len(caps))
	for _, c := range allCapabilities {
		if slices.Contains(caps, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, store.Invalid("permissions", "use SEND_AUDIO, SEND_VIDEO or SCREENSHARE")
	}
	return out, nil
}

// RequestPermission asks the hosts for capabilities on behalf of one of
// the caller's participants: every live participant of a host gets
// permission.requested. It reports whether a host was there to ask.
func (s *Service) RequestPermission(ctx context.Context, participant string, caps []CallPermission) (bool, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	if caps, err = checkCapabilities(caps); err != nil {
		return false, err
	}
	s.runtime()
	p, err := s.ownParticipant(ctx, me, "participant", participant)
	if err != nil {
		return false, err
	}
	hosts, err := s.store.LiveCallParticipantsOf(ctx, p.CallID, nil, true)
	if err != nil {
		return false, err
	}
	ev := &CallEvent{Type: EventPermissionRequested, Call: p.CallID, Session: p.SessionID,
		Participant: p, Permissions: caps, CreatedAt: time.Now().UTC()}
	asked := false
	for _, h := range hosts {
		if h.ID == p.ID {
			continue
		}
		// Held like a signal when the host's stream is between
		// connections: a request should not vanish in a reconnect.
		s.publishJSON(ctx, ParticipantTopic(h.ID), ev, true)
		asked = true
	}
	return asked, nil
}

// GrantPermissions gives a member of the call capabilities (hosts and
// admins), and returns the member's capabilities now.
func (s *Service) GrantPermissions(ctx context.Context, callID, user string, caps []CallPermission) ([]CallPermission, error) {
	return s.changePermissions(ctx, callID, user, caps, true)
}

// RevokePermissions takes capabilities from a member of the call (hosts
// and admins): a revoked SEND_AUDIO mutes the member's participants, a
// revoked SEND_VIDEO stops their video, a revoked SCREENSHARE their
// screen sharing. It returns the member's capabilities now.
func (s *Service) RevokePermissions(ctx context.Context, callID, user string, caps []CallPermission) ([]CallPermission, error) {
	return s.changePermissions(ctx, callID, user, caps, false)
}

func (s *Service) changePermissions(ctx context.Context, callID, user string, caps []CallPermission, grant bool) ([]CallPermission, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireHost(ctx, callID); err != nil {
		return nil, err
	}
	if err := store.CheckUserID("user", user); err != nil {
		return nil, err
	}
	if caps, err = checkCapabilities(caps); err != nil {
		return nil, err
	}
	var now []CallPermission
	var forced []*store.CallParticipant
	changed := false
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.LockCallMember(ctx, callID, user, true); err != nil {
			return err
		}
		a, err := tx.CallUserAccess(ctx, callID, user)
		if err != nil {
			return err
		}
		if a.Role == "" {
			return store.Invalid("user", "%q is not a member of call %q; add them with updateCallMembers first", user, callID)
		}
		before := s.effective(a)
		now = make([]CallPermission, 0, len(allCapabilities))
		for _, c := range allCapabilities {
			has := slices.Contains(before, c)
			if slices.Contains(caps, c) {
				has = grant
			}
			if has {
				now = append(now, c)
			}
		}
		if slices.Equal(before, now) && a.Capabilities != nil {
			return nil
		}
		changed = !slices.Equal(before, now)
		set := make([]string, len(now))
		for i, c := range now {
			set[i] = string(c)
		}
		if err := tx.SetCallPermissions(ctx, callID, user, me.UserID, set); err != nil {
			return err
		}
		if grant {
			return nil
		}
		forced, err = tx.ForceCallParticipantState(ctx, callID, []string{user}, store.CallStateForce{
			MuteAudio: !slices.Contains(now, SendAudio), MuteVideo: !slices.Contains(now, SendVideo),
			StopScreenshare: !slices.Contains(now, Screenshare)})
		return err
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.announcePermissions(ctx, callID, user, now)
	}
	s.announceStates(ctx, forced)
	return now, nil
}

// announcePermissions tells the call's live session of a member's new
// capabilities: one permissions.updated per live participant of theirs.
func (s *Service) announcePermissions(ctx context.Context, callID, user string, caps []CallPermission) {
	ps, err := s.store.LiveCallParticipantsOf(ctx, callID, []string{user}, false)
	if err != nil {
		s.log.Warn("calls: announce permissions", "call", callID, "err", err)
		return
	}
	at := time.Now().UTC()
	for _, p := range ps {
		s.publishJSON(ctx, SessionTopic(p.SessionID), &CallEvent{Type: EventPermissionsUpdated, Call: callID,
			Session: p.SessionID, Participant: p, Permissions: caps, CreatedAt: at}, false)
	}
}

// announceStates sends participant.updated for participants whose state
// changed (each carries its state).
func (s *Service) announceStates(ctx context.Context, ps []*store.CallParticipant) {
	at := time.Now().UTC()
	for _, p := range ps {
		s.publishJSON(ctx, SessionTopic(p.SessionID), &CallEvent{Type: EventParticipantUpdated, Call: p.CallID,
			Session: p.SessionID, Participant: p, CreatedAt: at}, false)
	}
}

// UpdateParticipantState changes the track state of one of the caller's
// participants (nil: unchanged). Unmuting audio needs SEND_AUDIO,
// unmuting video SEND_VIDEO, sharing the screen SCREENSHARE; muting is
// always allowed. The session gets participant.updated.
func (s *Service) UpdateParticipantState(ctx context.Context, participant string, audioMuted, videoMuted, screensharing *bool) (*store.CallParticipant, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if audioMuted == nil && videoMuted == nil && screensharing == nil {
		return nil, store.Invalid("state", "give at least one of audioMuted, videoMuted, screensharing")
	}
	s.runtime()
	p, err := s.ownParticipant(ctx, me, "participant", participant)
	if err != nil {
		return nil, err
	}
	var out *store.CallParticipant
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		// Shares the member's row with other state changes; a grant or
		// revoke waits, or is waited for.
		if err := tx.LockCallMember(ctx, p.CallID, p.UserID, false); err != nil {
			return err
		}
		access, err := tx.CallParticipantAccess(ctx, []uuid.UUID{p.ID})
		if err != nil {
			return err
		}
		if access[0] == nil {
			return store.NotFound("participant", participant)
		}
		caps := s.effective(access[0])
		need := func(on *bool, want bool, c CallPermission, what string) error {
			if on != nil && *on == want && !slices.Contains(caps, c) {
				return auth.Forbidden("you may not %s in call %q: you lack %s; ask a host with requestPermission", what, p.CallID, c)
			}
			return nil
		}
		for _, err := range []error{need(audioMuted, false, SendAudio, "unmute audio"),
			need(videoMuted, false, SendVideo, "unmute video"), need(screensharing, true, Screenshare, "share your screen")} {
			if err != nil {
				return err
			}
		}
		out, err = tx.UpdateCallParticipantState(ctx, p.ID, audioMuted, videoMuted, screensharing)
		if errors.Is(err, store.ErrNotFound) {
			return store.Conflict("participant %q has left the call; join it again for a new participant", participant)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.announceStates(ctx, []*store.CallParticipant{out})
	return out, nil
}

// MuteParticipants mutes the audio and/or video of the live participants
// of the given users in the call (hosts and admins), and returns those it
// changed. Users not in the call are skipped.
func (s *Service) MuteParticipants(ctx context.Context, callID string, users []string, audio, video bool) ([]*store.CallParticipant, error) {
	if err := s.requireHost(ctx, callID); err != nil {
		return nil, err
	}
	if len(users) == 0 || len(users) > store.MaxBatch {
		return nil, store.Invalid("users", "name 1 to %d users, got %d", store.MaxBatch, len(users))
	}
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		field := fmt.Sprintf("users[%d]", i)
		if err := store.CheckUserID(field, u); err != nil {
			return nil, err
		}
		if seen[u] {
			return nil, store.Invalid(field, "user %q appears more than once", u)
		}
		seen[u] = true
	}
	if !audio && !video {
		return nil, store.Invalid("audio", "mute audio, video or both")
	}
	ps, err := s.store.ForceCallParticipantState(ctx, callID, users, store.CallStateForce{MuteAudio: audio, MuteVideo: video})
	if err != nil {
		return nil, err
	}
	s.announceStates(ctx, ps)
	return ps, nil
}

// SendCallEvent broadcasts a custom event (a reaction, say) from one of
// the caller's participants to its session, rate-limited per participant
// (EventRate). Like sendSignal it reads no PostgreSQL once the
// participant is known, and stores nothing.
func (s *Service) SendCallEvent(ctx context.Context, participant, typ string, data json.RawMessage) (*CallEvent, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if typ == "" || len(typ) > MaxCustomEventType {
		return nil, store.Invalid("type", "must be 1 to %d characters", MaxCustomEventType)
	}
	for _, r := range typ {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == ':') {
			return nil, store.Invalid("type", "use letters, digits and _-.: only")
		}
	}
	if len(data) > MaxCustomEventData {
		return nil, store.Invalid("data", "is %d bytes; the limit is %d (4 KB)", len(data), MaxCustomEventData)
	}
	s.runtime()
	p, err := s.ownParticipant(ctx, me, "participant", participant)
	if err != nil {
		return nil, err
	}
	if err := s.state.AllowAll(ctx, ephemeral.Budget{Key: "callevent:" + p.ID.String(), Rate: s.eventRate,
		What: "call events from your participant"}); err != nil {
		return nil, err
	}
	ev := &CallEvent{Type: EventCustom, Call: p.CallID, Session: p.SessionID, Participant: p,
		Custom: &CallCustomEvent{Type: typ, Data: data}, CreatedAt: time.Now().UTC()}
	if err := s.publishJSONErr(ctx, SessionTopic(p.SessionID), ev, false); err != nil {
		return nil, err
	}
	return ev, nil
}

// publishJSON publishes an event in JSON on a topic (holding it for a
// participant's stream that is between connections, with hold), logging
// a failure: what it announces has committed.
func (s *Service) publishJSON(ctx context.Context, topic string, ev *CallEvent, hold bool) {
	if err := s.publishJSONErr(ctx, topic, ev, hold); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish event", "type", ev.Type, "session", ev.Session, "err", err)
	}
}

func (s *Service) publishJSONErr(ctx context.Context, topic string, ev *CallEvent, hold bool) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("calls: encode %s event: %w", ev.Type, err)
	}
	if hold {
		return s.bus.PublishOrHold(ctx, topic, data, s.timeout, maxHeldSignals)
	}
	return s.bus.PublishRaw(ctx, topic, data)
}
