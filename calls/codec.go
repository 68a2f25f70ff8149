package calls

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

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
const eventV1 = 0xB1

var eventTypes = [...]string{EventJoined, EventLeft, EventSignal, EventSessionStarted, EventSessionEnded}

var signalKinds = [...]SignalKind{SignalOffer, SignalAnswer, SignalICECandidate}

const (
	flagParticipant = 1 << iota
	flagSignal
	flagReason
)

// AppendEvent appends ev's encoding to dst.
func AppendEvent(dst []byte, ev *CallEvent) []byte {
	typ := byte(255)
	for i, t := range eventTypes {
		if t == ev.Type {
			typ = byte(i)
		}
	}
	dst = append(dst, eventV1, typ)
	dst = appendStr(dst, ev.Call)
	dst = append(dst, ev.Session[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ev.CreatedAt.UnixNano()))
	var flags byte
	if ev.Participant != nil {
		flags |= flagParticipant
	}
	if ev.Signal != nil {
		flags |= flagSignal
	}
	if ev.Reason != nil {
		flags |= flagReason
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

func appendParticipant(dst []byte, p *store.CallParticipant) []byte {
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

// EncodeEvent encodes an event for the bus.
func EncodeEvent(ev *CallEvent) ([]byte, error) {
	size := 128 + len(ev.Call)
	if ev.Signal != nil {
		size += len(ev.Signal.Payload)
	}
	return AppendEvent(make([]byte, 0, size), ev), nil
}

// eventBlock holds everything a decoded event points to, so decoding
// allocates it once.
type eventBlock struct {
	ev      CallEvent
	p, from store.CallParticipant
	sig     Signal
	reason  string
	leftP   time.Time
	leftF   time.Time
}

var errBadEvent = errors.New("calls: malformed call event")

// eventReader reads the binary form; text fields are sliced out of one
// string copy of the whole event.
type eventReader struct {
	s   string
	off int
	err bool
}

func (r *eventReader) byte() byte {
	if r.off >= len(r.s) {
		r.err = true
		return 0
	}
	b := r.s[r.off]
	r.off++
	return b
}

func (r *eventReader) uuid() (id uuid.UUID) {
	if r.off+16 > len(r.s) {
		r.err = true
		return id
	}
	copy(id[:], r.s[r.off:r.off+16])
	r.off += 16
	return id
}

func (r *eventReader) time() time.Time {
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

func (r *eventReader) str() string {
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

func (r *eventReader) participant(p *store.CallParticipant, left *time.Time) {
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

// DecodeEvent decodes an event from the bus.
func DecodeEvent(data []byte) (*CallEvent, error) {
	if len(data) > 0 && data[0] == '{' {
		ev := new(CallEvent)
		if err := json.Unmarshal(data, ev); err != nil {
			return nil, fmt.Errorf("calls: decode call event: %w", err)
		}
		return ev, nil
	}
	if len(data) < 2 || data[0] != eventV1 {
		return nil, errBadEvent
	}
	r := eventReader{s: string(data), off: 1}
	blk := new(eventBlock)
	ev := &blk.ev
	if t := int(r.byte()); t < len(eventTypes) {
		ev.Type = eventTypes[t]
	} else {
		return nil, errBadEvent
	}
	ev.Call = r.str()
	ev.Session = r.uuid()
	ev.CreatedAt = r.time()
	flags := r.byte()
	if flags&flagParticipant != 0 {
		r.participant(&blk.p, &blk.leftP)
		ev.Participant = &blk.p
	}
	if flags&flagSignal != 0 {
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
	if flags&flagReason != 0 {
		blk.reason = r.str()
		ev.Reason = &blk.reason
	}
	if r.err {
		return nil, errBadEvent
	}
	return ev, nil
}
