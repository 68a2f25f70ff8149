package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/internal/conncap"
)

// raiseFileLimit raises the process's open-file limit as far as the OS
// allows (the system's per-process ceiling when privileged, else the hard
// limit) and returns it: every connection is a file, and a server at its
// file limit cannot accept even a health check.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if ceiling := systemFileCeiling(); ceiling > lim.Max {
		up := syscall.Rlimit{Cur: ceiling, Max: ceiling}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return ceiling
		}
	}
	if lim.Cur < lim.Max {
		up := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return lim.Max
		}
	}
	return lim.Cur
}

// systemFileCeiling is Linux's per-process ceiling (fs.nr_open), capped at
// a million; 0 where unknown.
func systemFileCeiling() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return min(n, 1<<20)
}

// connectionCaps turns the configuration into the listener's caps: the
// total defaults to nine tenths of the file limit, the rest being for
// PostgreSQL, Redis, files and the overflow that answers health checks.
func connectionCaps(h HTTPLimits, fileLimit uint64, reg prometheus.Registerer) conncap.Options {
	total := h.MaxConnections
	if total < 0 {
		total = int(fileLimit * 9 / 10)
	}
	return conncap.Options{PerAddress: h.MaxConnectionsPerAddress, Total: total, Overflow: 64, Registerer: reg}
}

// listen opens the API listener with its connection caps.
func listen(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*conncap.Listener, error) {
	limit := raiseFileLimit()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	caps := connectionCaps(cfg.HTTP, limit, reg)
	log.Info("connection limits", "open_files", limit, "max_connections", caps.Total, "max_per_address", caps.PerAddress)
	if cfg.Dev && !isLoopback(ln.Addr()) {
		log.Warn("DEV MODE IS LISTENING BEYOND THIS MACHINE: anyone who can reach " + ln.Addr().String() +
			" may ask POST /dev/token for any user's token (it answers loopback clients only, but the API is open to them); " +
			"run production without BROOK_DEV, and set BROOK_ADDR=127.0.0.1:PORT for development")
	}
	return conncap.Wrap(ln, caps), nil
}

// isLoopback reports whether addr is a loopback address (not a wildcard).
func isLoopback(addr net.Addr) bool {
	t, ok := addr.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// newHTTPServer returns the API's HTTP server: timeouts fit for an API
// (a WebSocket, once upgraded, keeps its own deadlines: ping and pong,
// and one per write), and answers only health checks and metrics on
// connections past the total cap, which is when operators need them.
func newHTTPServer(h HTTPLimits, ln *conncap.Listener, handler http.Handler, refuse http.Handler) *http.Server {
	health := func(r *http.Request) bool { return r.URL.Path == "/healthz" || r.URL.Path == "/metrics" }
	return &http.Server{
		Handler:           ln.Guard(handler, health, refuse),
		ReadHeaderTimeout: min(10*time.Second, h.ReadTimeout),
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		ConnContext:       conncap.ConnContext,
	}
}
