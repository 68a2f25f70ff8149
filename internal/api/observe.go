package api

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/internal/stream"
)

// metrics are the Prometheus series of the GraphQL layer. Operations are
// labelled by their first root field, which the schema bounds, never by the
// client-chosen operation name, which would let clients mint series.
type metrics struct {
	operations    *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	subscriptions prometheus.Gauge
	connections   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brook_graphql_operations_total", Help: "GraphQL operations by type and root field."},
			[]string{"type", "field"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "brook_graphql_operation_duration_seconds",
			Help:    "Latency of GraphQL queries and mutations by root field.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
			[]string{"type", "field"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brook_graphql_errors_total", Help: "GraphQL errors sent to clients, by code."},
			[]string{"code"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_graphql_subscriptions_open", Help: "GraphQL subscriptions open on this node."}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_websocket_connections_open", Help: "WebSocket connections open on this node."}),
	}
	if reg != nil {
		reg.MustRegister(m.operations, m.duration, m.errors, m.subscriptions, m.connections)
	}
	return m
}

// rootField names an operation by its first root field ("me", "addActivity").
func rootField(op *ast.OperationDefinition) string {
	if op == nil {
		return "invalid"
	}
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			return f.Name
		}
	}
	return "fragment"
}

// observeOperation counts operations and keeps the subscriptions gauge;
// release, when not nil, runs too when the operation ends. (One watch of
// the context for both: an idle subscription holds each for hours.)
func (m *metrics) observeOperation(ctx context.Context, next graphql.OperationHandler, release func()) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	typ, field := string(oc.Operation.Operation), rootField(oc.Operation)
	m.operations.WithLabelValues(typ, field).Inc()
	if info := requestFrom(ctx); info != nil {
		info.addOperation(typ + " " + field)
	}
	if oc.Operation.Operation == ast.Subscription {
		m.subscriptions.Inc()
		if done := release; done != nil {
			release = func() { m.subscriptions.Dec(); done() }
		} else {
			release = m.subscriptions.Dec
		}
	}
	if release != nil {
		// A WebSocket operation runs it as it ends: watching the context
		// cost every idle subscription a context and a map entry more.
		if op, ok := stream.TransportFrom(ctx).(*wsOperation); !ok || !op.onEnd(release) {
			context.AfterFunc(ctx, release)
		}
	}
	return next(ctx)
}

// observeResponse records latency and error codes of each response.
func (m *metrics) observeResponse(ctx context.Context, resp *graphql.Response, log *slog.Logger) {
	// A request that never became an operation (a malformed body) has no
	// operation context, and GetOperationContext panics without one.
	if resp == nil || !graphql.HasOperationContext(ctx) {
		return
	}
	oc := graphql.GetOperationContext(ctx)
	var codes []string
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		m.errors.WithLabelValues(code).Inc()
		codes = append(codes, code)
	}
	// Only a response with errors has codes to add: the lookup walks the
	// whole context chain, once per event of every subscription otherwise
	// (7% of the CPU of delivering a chat message to 1,000 subscribers).
	if len(codes) > 0 {
		if info := requestFrom(ctx); info != nil {
			info.addCodes(codes)
		}
	}
	if oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
		return
	}
	typ, field := string(oc.Operation.Operation), rootField(oc.Operation)
	elapsed := time.Since(oc.Stats.OperationStart)
	m.duration.WithLabelValues(typ, field).Observe(elapsed.Seconds())
	log.Debug("operation", "request_id", RequestID(ctx), "type", typ, "field", field,
		"ms", float64(elapsed.Microseconds())/1000, "codes", codes)
}

// requestInfo follows one HTTP request (or WebSocket connection) through
// the GraphQL layer, so it can be logged as one line at the end.
type requestInfo struct {
	id   string
	user string

	mu    sync.Mutex
	ops   []string
	codes []string

	// holders are how many must release the request before its line is
	// logged: the HTTP handler, and the WebSocket connection it upgraded,
	// which outlives it.
	holders atomic.Int32
	logLine func()
}

// detach keeps the request open after its HTTP handler returns, until
// release: a WebSocket connection is one request that ends when it closes.
func (r *requestInfo) detach() { r.holders.Add(1) }

// release lets go of the request; the last to let go logs it.
func (r *requestInfo) release() {
	if r.holders.Add(-1) == 0 {
		r.logLine()
	}
}

func (r *requestInfo) setUser(user string) {
	r.mu.Lock()
	r.user = user
	r.mu.Unlock()
}

func (r *requestInfo) addOperation(op string) {
	r.mu.Lock()
	if len(r.ops) < 8 {
		r.ops = append(r.ops, op)
	}
	r.mu.Unlock()
}

func (r *requestInfo) addCodes(codes []string) {
	r.mu.Lock()
	if len(r.codes) < 16 {
		r.codes = append(r.codes, codes...)
	}
	r.mu.Unlock()
}

type requestKey struct{}

func requestFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestKey{}).(*requestInfo)
	return info
}

// RequestID returns the id of the request being served, which INTERNAL
// errors quote and logs record.
func RequestID(ctx context.Context) string {
	if info := requestFrom(ctx); info != nil {
		return info.id
	}
	return "-"
}

// requestID takes a sane X-Request-Id from the client or makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}) < 0 {
		return id
	}
	return uuid.Must(uuid.NewV7()).String()
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an id and logs one structured line when it
// ends. A WebSocket connection is one request that ends when it closes.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &requestInfo{id: requestID(r)}
		w.Header().Set("X-Request-Id", info.id)
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		// The line, logged when the request ends, holds on to nothing of
		// the request (a WebSocket connection outlives its handler).
		method, path, status := r.Method, r.URL.Path, 0
		info.holders.Store(1)
		info.logLine = func() {
			if path == "/healthz" || path == "/metrics" {
				return
			}
			info.mu.Lock()
			defer info.mu.Unlock()
			log.Info("request", "request_id", info.id, "method", method, "path", path,
				"status", status, "ms", float64(time.Since(start).Microseconds())/1000,
				"user", info.user, "ops", info.ops, "codes", info.codes)
		}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestKey{}, info)))
		status = sw.status
		if status == 0 {
			status = http.StatusOK
		}
		info.release()
	})
}

// Hijack lets WebSocket upgrades through the wrapper.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("api: connection cannot be hijacked")
	}
	w.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Flush lets streaming responses through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
