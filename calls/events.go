package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
)

// Call events travel on the event bus: session-wide events (joins, leaves,
// session start and end) on the session's topic, signals on the topic of
// the participant they are addressed to. Both the API (mutations) and the
// workers (the timeout sweep) publish them, so their format lives here.

// Types of call events.
const (
	// CallEventReady is the first event of every callEvents stream: the
	// subscription is live. It is never published on the bus.
	CallEventReady          = "ready"
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
	// Participants are the session's live participants, on ready (made
	// by the subscription itself, never published).
	Participants []*CallParticipant `json:"-"`
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
func CallSessionTopic(id uuid.UUID) string { return callTopic("call:s:", id) }

// CallParticipantTopic is the bus topic of the signals addressed to a participant.
func CallParticipantTopic(id uuid.UUID) string { return callTopic("call:p:", id) }

// callTopic builds prefix+id in one allocation (it is on the signaling path).
func callTopic(prefix string, id uuid.UUID) string {
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

// CallLeftTopic carries the ids of participants that have just left, so
// every node drops them from its in-process cache of signaling facts.
const CallLeftTopic = "calls:left"

// Call events are encoded in a compact binary form rather than JSON: the
// signaling path encodes and decodes one per relayed signal, and this form
// costs no allocation to encode (into a pooled buffer) and two to decode
// (one string holding every text field, one block holding the structs).
// The first byte is a version; a JSON object (first byte '{') is decoded
// too, so the format can change in a rolling deploy.
//
//	version 0xB1, type byte, call str, session 16, at i64, flags byte,
//	[participant], [signal: id 16, from participant, to 16, kind byte,
//	payload str, sentAt i64], [reason str]
//	participant: id 16, session 16, call str, user str, joinedAt i64,
//	  left byte, [leftAt i64]
//	str: uvarint length, bytes; i64: Unix nanoseconds, big-endian
const callEventV1 = 0xB1

var callEventTypes = [...]string{CallEventJoined, CallEventLeft, CallEventSignal, CallEventSessionStarted, CallEventSessionEnded}

var signalKinds = [...]SignalKind{SignalOffer, SignalAnswer, SignalICECandidate}

const (
	callFlagParticipant = 1 << iota
	callFlagSignal
	callFlagReason
)

// AppendCallEvent appends ev's encoding to dst.
func AppendCallEvent(dst []byte, ev *CallEvent) []byte {
	typ := byte(255)
	for i, t := range callEventTypes {
		if t == ev.Type {
			typ = byte(i)
		}
	}
	dst = append(dst, callEventV1, typ)
	dst = appendStr(dst, ev.Call)
	dst = append(dst, ev.Session[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ev.CreatedAt.UnixNano()))
	var flags byte
	if ev.Participant != nil {
		flags |= callFlagParticipant
	}
	if ev.Signal != nil {
		flags |= callFlagSignal
	}
	if ev.Reason != nil {
		flags |= callFlagReason
	}
	dst = append(dst, flags)
	if ev.Participant != nil {
		dst = appendParticipant(dst, ev.Participant)
	}
	if sig := ev.Signal; sig != nil {
		dst = append(dst, sig.ID[:]...)
		dst = appendParticipant(dst, sig.From)
		dst = append(dst, sig.To[:]...)
		kind := byte(255)
		for i, k := range signalKinds {
			if k == sig.Kind {
				kind = byte(i)
			}
		}
		dst = append(dst, kind)
		dst = appendStr(dst, sig.Payload)
		dst = binary.BigEndian.AppendUint64(dst, uint64(sig.SentAt.UnixNano()))
	}
	if ev.Reason != nil {
		dst = appendStr(dst, *ev.Reason)
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendParticipant(dst []byte, p *CallParticipant) []byte {
	dst = append(dst, p.ID[:]...)
	dst = append(dst, p.SessionID[:]...)
	dst = appendStr(dst, p.CallID)
	dst = appendStr(dst, p.UserID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.JoinedAt.UnixNano()))
	if p.LeftAt == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	return binary.BigEndian.AppendUint64(dst, uint64(p.LeftAt.UnixNano()))
}

// EncodeCallEvent encodes an event for the bus.
func EncodeCallEvent(ev *CallEvent) ([]byte, error) {
	size := 128 + len(ev.Call)
	if ev.Signal != nil {
		size += len(ev.Signal.Payload)
	}
	return AppendCallEvent(make([]byte, 0, size), ev), nil
}

// callEventBlock holds everything a decoded event points to, so decoding
// allocates it once.
type callEventBlock struct {
	ev      CallEvent
	p, from CallParticipant
	sig     Signal
	reason  string
	leftP   time.Time
	leftF   time.Time
}

var errBadCallEvent = errors.New("store: malformed call event")

// callEventReader reads the binary form; text fields are sliced out of one
// string copy of the whole event.
type callEventReader struct {
	s   string
	off int
	err bool
}

func (r *callEventReader) byte() byte {
	if r.off >= len(r.s) {
		r.err = true
		return 0
	}
	b := r.s[r.off]
	r.off++
	return b
}

func (r *callEventReader) uuid() (id uuid.UUID) {
	if r.off+16 > len(r.s) {
		r.err = true
		return id
	}
	copy(id[:], r.s[r.off:r.off+16])
	r.off += 16
	return id
}

func (r *callEventReader) time() time.Time {
	if r.off+8 > len(r.s) {
		r.err = true
		return time.Time{}
	}
	var n uint64
	for i := 0; i < 8; i++ {
		n = n<<8 | uint64(r.s[r.off+i])
	}
	r.off += 8
	return time.Unix(0, int64(n)).UTC()
}

func (r *callEventReader) str() string {
	var n uint64
	for shift := uint(0); ; shift += 7 {
		b := r.byte()
		if r.err || shift > 63 {
			r.err = true
			return ""
		}
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	if n > uint64(len(r.s)-r.off) {
		r.err = true
		return ""
	}
	v := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *callEventReader) participant(p *CallParticipant, left *time.Time) {
	p.ID = r.uuid()
	p.SessionID = r.uuid()
	p.CallID = r.str()
	p.UserID = r.str()
	p.JoinedAt = r.time()
	if r.byte() == 1 {
		*left = r.time()
		p.LeftAt = left
	}
}

// DecodeCallEvent decodes an event from the bus.
func DecodeCallEvent(data []byte) (*CallEvent, error) {
	if len(data) > 0 && data[0] == '{' {
		ev := new(CallEvent)
		if err := json.Unmarshal(data, ev); err != nil {
			return nil, fmt.Errorf("store: decode call event: %w", err)
		}
		return ev, nil
	}
	if len(data) < 2 || data[0] != callEventV1 {
		return nil, errBadCallEvent
	}
	r := callEventReader{s: string(data), off: 1}
	blk := new(callEventBlock)
	ev := &blk.ev
	if t := int(r.byte()); t < len(callEventTypes) {
		ev.Type = callEventTypes[t]
	} else {
		return nil, errBadCallEvent
	}
	ev.Call = r.str()
	ev.Session = r.uuid()
	ev.CreatedAt = r.time()
	flags := r.byte()
	if flags&callFlagParticipant != 0 {
		r.participant(&blk.p, &blk.leftP)
		ev.Participant = &blk.p
	}
	if flags&callFlagSignal != 0 {
		sig := &blk.sig
		sig.ID = r.uuid()
		r.participant(&blk.from, &blk.leftF)
		sig.From = &blk.from
		sig.To = r.uuid()
		if k := int(r.byte()); k < len(signalKinds) {
			sig.Kind = signalKinds[k]
		} else {
			r.err = true
		}
		sig.Payload = r.str()
		sig.SentAt = r.time()
		ev.Signal = sig
	}
	if flags&callFlagReason != 0 {
		blk.reason = r.str()
		ev.Reason = &blk.reason
	}
	if r.err {
		return nil, errBadCallEvent
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
// cached facts, and announces session.ended and participant.left to the
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
			s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish left participants", "err", err)
		}
	}
	// A session that ended with these departures says so first: a
	// callEvents stream ends at the first event that ends it (the session's
	// end, or its own participant's departure), and its client should learn
	// that the session is over, not only that it left.
	for _, cs := range d.Ended {
		s.PublishCallEvent(ctx, pub, &CallEvent{Type: CallEventSessionEnded, Call: cs.CallID, Session: cs.ID, CreatedAt: *cs.EndedAt})
	}
	reason := d.Reason
	for _, p := range d.Left {
		s.PublishCallEvent(ctx, pub, &CallEvent{Type: CallEventLeft, Call: p.CallID, Session: p.SessionID,
			Participant: p, Reason: &reason, CreatedAt: *p.LeftAt})
	}
}

// PublishCallEvent publishes a session-wide event on the session's topic.
func (s *Store) PublishCallEvent(ctx context.Context, pub Publisher, ev *CallEvent) {
	data, err := EncodeCallEvent(ev)
	if err == nil {
		err = pub.PublishRaw(ctx, CallSessionTopic(ev.Session), data)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish event", "type", ev.Type, "session", ev.Session, "err", err)
	}
}
