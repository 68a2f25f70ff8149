package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// follower is one graphql-ws client through HAProxy that keeps a
// subscription open: when its connection ends it dials HAProxy again
// (which sends it to a living node) and starts the subscription again,
// with vars() giving its variables then (messageAdded resumes with after:
// the last message it has).
type follower struct {
	url, token, query string
	vars              func() client.Vars
	onNext            func(r *client.Response)

	mu         sync.Mutex
	connected  bool
	sessions   int       // subscriptions started (the first and each resume)
	lastDialed time.Time // when the last subscription started
	ends       []ending  // why each subscription ended
}

// ending is why and when a subscription ended: refused by the node with
// a GraphQL error (graphql), or its connection dropped.
type ending struct {
	at      time.Time
	graphql bool
	why     string
}

func (f *follower) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		conn, err := client.Dial(ctx, client.WebsocketURL(f.url), client.DialOptions{Payload: client.AuthPayload(f.token), Buffer: 4096})
		if err != nil {
			// Refused (no node up yet) or mid-failover: try again shortly.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		sub, err := conn.Subscribe(f.query, f.vars())
		if err == nil {
			f.mu.Lock()
			f.connected, f.lastDialed = true, time.Now()
			f.sessions++
			f.mu.Unlock()
		}
		graphql := false
		for err == nil {
			var r *client.Response
			if r, err = sub.Next(ctx); err == nil {
				if err = r.Err(); err == nil {
					f.onNext(r)
				} else {
					graphql = true
				}
			}
		}
		f.mu.Lock()
		f.connected = false
		if ctx.Err() == nil {
			f.ends = append(f.ends, ending{at: time.Now(), graphql: graphql, why: err.Error()})
		}
		f.mu.Unlock()
		_ = conn.Close()
	}
}

// state returns whether the subscription is open and how many times it
// was started.
func (f *follower) state() (connected bool, sessions int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected, f.sessions
}

// endings returns why each subscription ended, oldest first.
func (f *follower) endings() []ending {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ending(nil), f.ends...)
}
