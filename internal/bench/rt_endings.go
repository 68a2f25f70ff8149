package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The round trip's subscriptions can end before the bench closes them: an
// error frame (the server ended the subscription, UNAVAILABLE say), a
// complete frame, or the connection dropping. An event a subscriber never
// got is then not a lost event but a subscriber that was gone, and the
// table must say which; rtEndings counts them.

var (
	rtErrCode    = regexp.MustCompile(`"code":"([A-Z_]+)"`)
	rtErrMessage = regexp.MustCompile(`"message":"((?:[^"\\]|\\.)*)"`)
)

// rtSubscriber is one round trip subscriber's outcome: the measured events
// it got, and how and when it ended, if it did before the bench closed it.
type rtSubscriber struct {
	user string
	got  atomic.Int64
	// ended is set once, by the subscriber's reader goroutine, when its
	// subscription ended; endedBefore is the post that was next then
	// (0: at start-up, before the warm-up post).
	ended       atomic.Bool
	endedBefore atomic.Int64
	kind        atomic.Value // string: how it ended
}

// retryable reports whether s ended in a way a client retries: an
// UNAVAILABLE error (which carries retryAfter) or a dropped connection.
func (s *rtSubscriber) retryable() bool {
	k, _ := s.kind.Load().(string)
	return k == "error frame UNAVAILABLE" || k == "next frame with errors UNAVAILABLE" || k == "connection dropped"
}

// rtEndings counts the ways subscriptions ended, each kind with the
// number of subscribers and the first message seen.
type rtEndings struct {
	// next is the post about to be sent, for endedBefore.
	next atomic.Int64
	// closing is set before the bench closes the connections itself.
	closing atomic.Bool

	mu    sync.Mutex
	kinds map[string]*rtEnding
}

// rtEnding is one kind of ending.
type rtEnding struct {
	subscribers, atStartup int
	first, firstUser       string
}

// frame classifies a frame that is not an event: it records s as ended
// when the frame ends its subscription (an error frame; a next frame with
// errors, which is how gqlgen ends a subscription whose resolver failed,
// before its complete; a complete), and reports whether it did.
func (e *rtEndings) frame(s *rtSubscriber, data []byte) bool {
	kind := ""
	switch {
	case bytes.Contains(data, []byte(`"type":"error"`)):
		kind = "error frame"
	case bytes.Contains(data, []byte(`"type":"next"`)) && bytes.Contains(data, []byte(`"errors":`)):
		kind = "next frame with errors"
	}
	if kind != "" {
		if m := rtErrCode.FindSubmatch(data); m != nil {
			kind += " " + string(m[1])
		}
		msg := string(data)
		if m := rtErrMessage.FindSubmatch(data); m != nil {
			msg = string(m[1])
		}
		e.end(s, kind, msg)
		return true
	}
	switch {
	case bytes.Contains(data, []byte(`"type":"complete"`)):
		e.end(s, "complete frame", string(data))
		return true
	}
	return false
}

// closed records a connection that ended while the bench still used it.
func (e *rtEndings) closed(s *rtSubscriber, err error) {
	if e.closing.Load() {
		return
	}
	e.end(s, "connection dropped", err.Error())
}

// end counts s under kind; a subscriber counts once, under the first way
// it ended (a drop after an error frame is the same subscriber).
func (e *rtEndings) end(s *rtSubscriber, kind, msg string) {
	if s.ended.Swap(true) {
		return
	}
	next := e.next.Load()
	s.endedBefore.Store(next)
	s.kind.Store(kind)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kinds == nil {
		e.kinds = map[string]*rtEnding{}
	}
	k := e.kinds[kind]
	if k == nil {
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		k = &rtEnding{first: msg, firstUser: s.user}
		e.kinds[kind] = k
	}
	k.subscribers++
	if next == 0 {
		k.atStartup++
	}
}

// summary says how many subscribers ended, of which kinds, with each
// kind's first message: "" when none did.
func (e *rtEndings) summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.kinds) == 0 {
		return ""
	}
	names := make([]string, 0, len(e.kinds))
	for n := range e.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		k := e.kinds[n]
		parts = append(parts, fmt.Sprintf("%s: %d subscribers (%d at start-up, before the warm-up post); first, %s: %q",
			n, k.subscribers, k.atStartup, k.firstUser, k.first))
	}
	return strings.Join(parts, "; ")
}

// rtTally splits the events a size's subscribers missed between those
// that ended early and those that stayed.
type rtTally struct {
	received, expected          int64
	endedSubs, endedAtStartup   int
	missedByEnded, missedByLive int64
}

// tally counts subs' events against posts measured posts each.
func tally(subs []*rtSubscriber, posts int) rtTally {
	var t rtTally
	for _, s := range subs {
		got := s.got.Load()
		t.received += got
		t.expected += int64(posts)
		missed := int64(posts) - got
		if s.ended.Load() {
			t.endedSubs++
			if s.endedBefore.Load() == 0 {
				t.endedAtStartup++
			}
			t.missedByEnded += missed
		} else {
			t.missedByLive += missed
		}
	}
	return t
}

// cell is the table's "events received / expected" cell.
func (t rtTally) cell() string {
	s := fmt.Sprintf("%d / %d", t.received, t.expected)
	if t.endedSubs > 0 || t.missedByLive > 0 {
		s += fmt.Sprintf(" (never came to live subscribers: %d; missed by %d subscribers that ended early, %d of them at start-up: %d)",
			t.missedByLive, t.endedSubs, t.endedAtStartup, t.missedByEnded)
	}
	return s
}

// guardCounts are each node's Redis guard counters: how often its circuit
// opened and how many commands failed for want of an answer.
type guardCounts [][2]float64

// readGuards reads the nodes' guard counters; a node whose /metrics
// cannot be read counts zero (the figures are for the notes).
func readGuards(nodes []*server) guardCounts {
	out := make(guardCounts, len(nodes))
	for i, n := range nodes {
		out[i][0], _ = metric(n, "brook_redis_circuit_opened_total")
		out[i][1], _ = metric(n, "brook_redis_command_failures_total")
	}
	return out
}

// since says what changed from before to g, node by node: "" when nothing.
func (g guardCounts) since(before guardCounts) string {
	var parts []string
	changed := false
	for i := range g {
		opened, failed := g[i][0]-before[i][0], g[i][1]-before[i][1]
		changed = changed || opened != 0 || failed != 0
		parts = append(parts, fmt.Sprintf("node %d: circuit opened %.0f times, %.0f commands failed", i+1, opened, failed))
	}
	if !changed {
		return ""
	}
	return strings.Join(parts, "; ")
}

// openConns is the connections the nodes hold open, in all.
func openConns(nodes []*server) float64 {
	n := 0.0
	for _, s := range nodes {
		v, _ := metric(s, "brook_connections_open")
		n += v
	}
	return n
}

// quiesce waits, at most 30 s, until the nodes hold no more connections
// than before (give or take the bench's own keep-alive HTTP connections:
// the author's, the metrics reads') and their Redis guards have counted no
// failure for a second.
func quiesce(ctx context.Context, nodes []*server, before float64) {
	deadline := time.Now().Add(30 * time.Second)
	last, calm := readGuards(nodes), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		g := readGuards(nodes)
		if g.since(last) != "" {
			last, calm = g, time.Now()
		}
		if openConns(nodes) <= before+8 && time.Since(calm) >= time.Second {
			return
		}
	}
	fmt.Fprintf(os.Stderr, "bench: feeds: round trip: the nodes did not settle within 30 s of closing the subscribers: %.0f connections open (%.0f before)\n",
		openConns(nodes), before)
}
