// Package conncap caps the TCP connections a server holds: per client
// address and in total. A slow or idle client flood from one address hits
// the per-address cap and is closed at once; past the total cap, a small
// overflow of connections is still accepted for a moment, marked, so the
// server can answer health checks (and refuse the rest) while the cap is
// reached rather than time out every caller.
package conncap

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are the caps. Zero means no cap.
type Options struct {
	// PerAddress caps the open connections of one client IP address.
	PerAddress int
	// Total caps the open connections of the listener.
	Total int
	// Overflow is how many connections past Total are still accepted, each
	// for at most OverflowLifetime, so that health checks get an answer.
	// Connections past Total+Overflow are closed at once.
	Overflow int
	// OverflowPerAddress caps one address's share of the overflow (default
	// 4): a flood that reconnects as fast as it is closed cannot take every
	// overflow place from the health checks of other addresses.
	OverflowPerAddress int
	// OverflowLifetime bounds an overflow connection (default 2 s).
	OverflowLifetime time.Duration
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Listener is a net.Listener that enforces Options.
type Listener struct {
	net.Listener
	opts Options

	mu       sync.Mutex
	total    int
	overflow int
	byAddr   map[string]int
	// overByAddr counts each address's overflow connections.
	overByAddr map[string]int

	open    prometheus.Gauge
	refused *prometheus.CounterVec
}

// Wrap caps the connections ln accepts.
func Wrap(ln net.Listener, opts Options) *Listener {
	if opts.OverflowPerAddress <= 0 {
		opts.OverflowPerAddress = 4
	}
	if opts.OverflowLifetime <= 0 {
		opts.OverflowLifetime = 2 * time.Second
	}
	l := &Listener{
		Listener:   ln,
		opts:       opts,
		byAddr:     map[string]int{},
		overByAddr: map[string]int{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brook_connections_open",
			Help: "TCP connections the API listener holds open (WebSockets included)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brook_connections_refused_total",
			Help: "TCP connections closed on accept or answered 503 because a cap was reached, by cap (per_address, total)."}, []string{"cap"}),
	}
	l.refused.WithLabelValues("per_address")
	l.refused.WithLabelValues("total")
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(l.open, l.refused)
	}
	return l
}

// Accept returns the next connection within the caps; connections over
// them are closed here and never reach the server.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		l.mu.Lock()
		if l.opts.PerAddress > 0 && l.byAddr[addr] >= l.opts.PerAddress {
			l.mu.Unlock()
			l.refused.WithLabelValues("per_address").Inc()
			_ = c.Close()
			continue
		}
		over := l.opts.Total > 0 && l.total >= l.opts.Total
		if over && (l.overflow >= l.opts.Overflow || l.overByAddr[addr] >= l.opts.OverflowPerAddress) {
			l.mu.Unlock()
			l.refused.WithLabelValues("total").Inc()
			_ = c.Close()
			continue
		}
		l.byAddr[addr]++
		if over {
			l.overflow++
			l.overByAddr[addr]++
		} else {
			l.total++
		}
		l.mu.Unlock()
		l.open.Inc()
		cc := &Conn{Conn: c, l: l, addr: addr, over: over}
		if over {
			// A timer, not a deadline: the HTTP server sets its own.
			cc.expiry = time.AfterFunc(l.opts.OverflowLifetime, func() { _ = cc.Close() })
		}
		return cc, nil
	}
}

// Stats reports the connections held: within the total cap, and overflow.
func (l *Listener) Stats() (open, overflow int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.overflow
}

func (l *Listener) release(c *Conn) {
	l.mu.Lock()
	if n := l.byAddr[c.addr] - 1; n > 0 {
		l.byAddr[c.addr] = n
	} else {
		delete(l.byAddr, c.addr)
	}
	if c.over {
		l.overflow--
		if n := l.overByAddr[c.addr] - 1; n > 0 {
			l.overByAddr[c.addr] = n
		} else {
			delete(l.overByAddr, c.addr)
		}
	} else {
		l.total--
	}
	l.mu.Unlock()
	l.open.Dec()
}

// Conn is an accepted connection; it gives its place back when closed.
type Conn struct {
	net.Conn
	l    *Listener
	addr string
	over bool
	once sync.Once
	// expiry closes an overflow connection after OverflowLifetime.
	expiry *time.Timer
}

// Close closes the connection and frees its place under the caps.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.l.release(c)
	})
	return err
}

// OverCap reports whether the connection was accepted past the total cap:
// it should get an answer only to health checks, then be closed.
func (c *Conn) OverCap() bool { return c.over }

// NetConn returns the connection underneath.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Guard answers requests that arrived on connections over the total cap:
// those allow accepts (health checks) are served, the others are refused
// by refuse (503), and the connection is closed after the answer.
func (l *Listener) Guard(next http.Handler, allow func(*http.Request) bool, refuse http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !OverCap(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if allow(r) {
			next.ServeHTTP(w, r)
			return
		}
		l.refused.WithLabelValues("total").Inc()
		refuse.ServeHTTP(w, r)
	})
}

type overCapKey struct{}

// ConnContext is for http.Server.ConnContext: it records in the
// connection's context whether it is over the total cap.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*Conn); ok && cc.over {
		return context.WithValue(ctx, overCapKey{}, true)
	}
	return ctx
}

// OverCap reports whether the request's connection is over the total cap.
func OverCap(ctx context.Context) bool {
	v, _ := ctx.Value(overCapKey{}).(bool)
	return v
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
