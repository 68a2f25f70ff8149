package api

// WebSocket keep-alive: the pinger, which pings every connection of a node
// from one goroutine.

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// pinger keeps every WebSocket connection of a node alive from one
// goroutine. graphql-transport-ws connections get a ping every interval and
// must answer within two (the read deadline closes them otherwise);
// graphql-ws connections get a keep-alive ("ka") message every keepAlive.
type pinger struct {
	interval, keepAlive time.Duration

	mu        sync.Mutex
	conns     map[*wsConn]struct{}
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func newPinger(interval, keepAlive time.Duration) *pinger {
	p := &pinger{interval: interval, keepAlive: keepAlive, conns: map[*wsConn]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pinger) period(c *wsConn) time.Duration {
	if c.legacy {
		return p.keepAlive
	}
	return p.interval
}

// add starts pinging c, unless c is already closed: its close has removed
// it from the pinger for good (a token that expired within auth's leeway
// closes the connection while it signs in).
func (p *pinger) add(c *wsConn) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	p.mu.Lock()
	c.nextPing = now.Add(p.period(c))
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	if !c.legacy {
		// The first pong is due within two intervals.
		_ = c.ws.SetReadDeadline(now.Add(2 * p.interval))
	}
}

func (p *pinger) remove(c *wsConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Close stops the pinger; later calls do nothing.
func (p *pinger) Close() {
	p.closeOnce.Do(func() { close(p.stop) })
	<-p.done
}

// pingTick is how often the pinger looks for connections due a ping;
// connections are pinged at their own phase, so pings spread out.
const pingTick = time.Second

func (p *pinger) run() {
	defer close(p.done)
	t := time.NewTicker(pingTick)
	defer t.Stop()
	var due []*wsConn
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			due = due[:0]
			p.mu.Lock()
			for c := range p.conns {
				if !now.Before(c.nextPing) {
					c.nextPing = now.Add(p.period(c))
					due = append(due, c)
				}
			}
			p.mu.Unlock()
			for _, c := range due {
				p.ping(c, now)
			}
			clear(due)
		}
	}
}

// ping sends one keep-alive message. A connection busy writing is alive
// enough and is skipped this time; a write that cannot finish within a
// second (a client that stopped reading) fails, and the missing pong then
// closes the connection.
func (p *pinger) ping(c *wsConn, now time.Time) {
	if !c.writeMu.TryLock() {
		return
	}
	defer c.writeMu.Unlock()
	// From now, not from the tick: an earlier connection's ping may have
	// taken its full second.
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	if c.legacy {
		_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ka"}`))
		return
	}
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
	// A pong since the last ping extends the deadline by two intervals;
	// without one, the deadline set earlier stands.
	if c.receivedPong.Swap(false) {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * p.interval))
	}
}
