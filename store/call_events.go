package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Call events travel on the event bus: session-wide events (joins, leaves,
// session start and end) on the session's topic, signals on the topic of
// the participant they are addressed to. Both the API (mutations) and the
// workers (the timeout sweep) publish them, so their format lives here.

// Types of call events.
const (
	CallEventJoined         = "participant.joined"
	CallEventLeft           = "participant.left"
	CallEventSignal         = "signal"
	CallEventSessionStarted = "session.started"
	CallEventSessionEnded   = "session.ended"
)

// CallEvent is one event of a call session, as callEvents delivers it.
type CallEvent struct {
	Type    string    `json:"type"`
	Call    string    `json:"call"`
	Session uuid.UUID `json:"session"`
	// Participant is who joined or left (participant events only).
	Participant *CallParticipant `json:"participant,omitempty"`
	// Signal is set on signal events.
	Signal *Signal `json:"signal,omitempty"`
	// Reason says why a participant left: left or timeout.
	Reason    *string   `json:"reason,omitempty"`
	CreatedAt time.Time `json:"at"`
}

// SignalKind is the kind of a WebRTC signaling message.
type SignalKind string

// Kinds of signals.
const (
	SignalOffer        SignalKind = "OFFER"
	SignalAnswer       SignalKind = "ANSWER"
	SignalICECandidate SignalKind = "ICE_CANDIDATE"
)

// Valid reports whether k is a known kind.
func (k SignalKind) Valid() bool {
	return k == SignalOffer || k == SignalAnswer || k == SignalICECandidate
}

// MarshalGQL writes the kind as a GraphQL enum value.
func (k SignalKind) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads a GraphQL enum value.
func (k *SignalKind) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok || !SignalKind(s).Valid() {
		return Invalid("kind", "must be OFFER, ANSWER or ICE_CANDIDATE")
	}
	*k = SignalKind(s)
	return nil
}

// Signal is a WebRTC signaling message (an SDP offer or answer, or an ICE
// candidate) from one participant to another of the same session. Brook
// relays it and does not store it.
type Signal struct {
	ID      uuid.UUID        `json:"id"`
	From    *CallParticipant `json:"from"`
	To      uuid.UUID        `json:"to"`
	Kind    SignalKind       `json:"kind"`
	Payload string           `json:"payload"`
	SentAt  time.Time        `json:"sentAt"`
}

// MaxSignalPayload caps a signal's payload: 64 KB.
const MaxSignalPayload = 64 << 10

// CallSessionTopic is the bus topic of a session's own events.
func CallSessionTopic(id uuid.UUID) string { return "call:s:" + id.String() }

// CallParticipantTopic is the bus topic of the signals addressed to a participant.
func CallParticipantTopic(id uuid.UUID) string { return "call:p:" + id.String() }

// CallLeftTopic carries the ids of participants that have just left, so
// every node drops them from its in-process cache of signaling facts.
const CallLeftTopic = "calls:left"

// EncodeCallEvent encodes an event for the bus.
func EncodeCallEvent(ev *CallEvent) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("store: encode call event: %w", err)
	}
	return b, nil
}

// DecodeCallEvent decodes an event from the bus.
func DecodeCallEvent(data []byte) (*CallEvent, error) {
	ev := new(CallEvent)
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("store: decode call event: %w", err)
	}
	return ev, nil
}

// EncodeCallLeft encodes the ids of participants that left, for CallLeftTopic.
func EncodeCallLeft(ids []uuid.UUID) []byte {
	b := make([]byte, 0, len(ids)*37)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id.String()...)
	}
	return b
}

// DecodeCallLeft decodes a CallLeftTopic message, skipping malformed ids.
func DecodeCallLeft(data []byte) []uuid.UUID {
	var out []uuid.UUID
	for _, s := range strings.Split(string(data), ",") {
		if id, err := uuid.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// Publisher publishes raw bus events (the bus satisfies it).
type Publisher interface {
	PublishRaw(ctx context.Context, topic string, data []byte) error
}

// FinishCallDepartures does what follows a committed removal of
// participants: it drops them from Redis, tells every node to forget their
// cached facts, and announces participant.left and session.ended to the
// sessions' subscribers. Run it after the commit.
func (s *Store) FinishCallDepartures(ctx context.Context, pub Publisher, d *CallDepartures) {
	if d == nil {
		return
	}
	if err := s.ForgetCallParticipants(ctx, d.IDs); err != nil {
		// The sweep finds the liveness entries again and retries.
		s.log.Warn("calls: forget participants", "err", err)
	}
	if len(d.Left) > 0 {
		left := make([]uuid.UUID, len(d.Left))
		for i, p := range d.Left {
			left[i] = p.ID
		}
		if err := pub.PublishRaw(ctx, CallLeftTopic, EncodeCallLeft(left)); err != nil {
			s.log.Warn("calls: publish left participants", "err", err)
		}
	}
	reason := d.Reason
	for _, p := range d.Left {
		s.PublishCallEvent(ctx, pub, &CallEvent{Type: CallEventLeft, Call: p.CallID, Session: p.SessionID,
			Participant: p, Reason: &reason, CreatedAt: *p.LeftAt})
	}
	for _, cs := range d.Ended {
		s.PublishCallEvent(ctx, pub, &CallEvent{Type: CallEventSessionEnded, Call: cs.CallID, Session: cs.ID, CreatedAt: *cs.EndedAt})
	}
}

// PublishCallEvent publishes a session-wide event on the session's topic.
func (s *Store) PublishCallEvent(ctx context.Context, pub Publisher, ev *CallEvent) {
	data, err := EncodeCallEvent(ev)
	if err == nil {
		err = pub.PublishRaw(ctx, CallSessionTopic(ev.Session), data)
	}
	if err != nil {
		s.log.Warn("calls: publish event", "type", ev.Type, "session", ev.Session, "err", err)
	}
}
