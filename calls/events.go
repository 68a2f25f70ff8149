package calls

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// Call events travel on the event bus: session-wide events (joins, leaves,
// session start and end) on the session's topic, signals on the topic of
// the participant they are addressed to. The Service publishes them, for
// requests and for its jobs (the timeout sweep); LeftTopic tells every
// node's facts cache of departures.

// Types of call events.
const (
	// EventReady is the first event of every callEvents stream: the
	// subscription is live. It is never published on the bus.
	EventReady          = "ready"
	EventJoined         = "participant.joined"
	EventLeft           = "participant.left"
	EventSignal         = "signal"
	EventSessionStarted = "session.started"
	EventSessionEnded   = "session.ended"
)

// CallEvent is one event of a call session, as callEvents delivers it.
type CallEvent struct {
	Type    string    `json:"type"`
	Call    string    `json:"call"`
	Session uuid.UUID `json:"session"`
	// Participant is who joined or left (participant events only).
	Participant *store.CallParticipant `json:"participant,omitempty"`
	// Signal is set on signal events.
	Signal *Signal `json:"signal,omitempty"`
	// Reason says why a participant left: left or timeout.
	Reason *string `json:"reason,omitempty"`
	// Permissions are asked for (permission.requested) or now held
	// (permissions.updated).
	Permissions []CallPermission `json:"permissions,omitempty"`
	// Custom is a custom event's type and data.
	Custom    *CallCustomEvent `json:"custom,omitempty"`
	CreatedAt time.Time        `json:"at"`
	// Participants are the session's live participants, on ready (made
	// by the subscription itself, never published).
	Participants []*store.CallParticipant `json:"-"`
	// SFUToken is the stream's own participant's fresh SFU token, on its
	// own permissions.updated (made by the stream, never published).
	SFUToken *SFUToken `json:"-"`
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
		return store.Invalid("kind", "must be OFFER, ANSWER or ICE_CANDIDATE")
	}
	*k = SignalKind(s)
	return nil
}

// Signal is a WebRTC signaling message (an SDP offer or answer, or an ICE
// candidate) from one participant to another of the same session. Brook
// relays it and does not store it.
type Signal struct {
	ID      uuid.UUID              `json:"id"`
	From    *store.CallParticipant `json:"from"`
	To      uuid.UUID              `json:"to"`
	Kind    SignalKind             `json:"kind"`
	Payload string                 `json:"payload"`
	SentAt  time.Time              `json:"sentAt"`
}

// MaxSignalPayload caps a signal's payload: 64 KB.
const MaxSignalPayload = 64 << 10

// SessionTopic is the bus topic of a session's own events.
func SessionTopic(id uuid.UUID) string { return topic("call:s:", id) }

// ParticipantTopic is the bus topic of the signals addressed to a participant.
func ParticipantTopic(id uuid.UUID) string { return topic("call:p:", id) }

// topic builds prefix+id in one allocation (it is on the signaling path).
func topic(prefix string, id uuid.UUID) string {
	var b [16 + 36]byte
	n := copy(b[:], prefix)
	return string(appendUUID(b[:n], id))
}

// appendUUID appends id in its canonical 36-character form.
func appendUUID(dst []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// LeftTopic carries the ids of participants that have just left, so
// every node drops them from its in-process cache of signaling facts.
const LeftTopic = "calls:left"

// EncodeLeft encodes the ids of participants that left, for LeftTopic.
func EncodeLeft(ids []uuid.UUID) []byte {
	b := make([]byte, 0, len(ids)*37)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id.String()...)
	}
	return b
}

// DecodeLeft decodes a LeftTopic message, skipping malformed ids.
func DecodeLeft(data []byte) []uuid.UUID {
	var out []uuid.UUID
	for _, s := range strings.Split(string(data), ",") {
		if id, err := uuid.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}
