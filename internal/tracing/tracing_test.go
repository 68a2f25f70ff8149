package tracing_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/tracing"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// span is one span as the collector received it.
type span struct {
	trace, id, parent string
	name, node        string
	kind              tracepb.Span_SpanKind
	attrs             map[string]string
}

// collector is a real OTLP/HTTP receiver: it decodes the protobuf export
// requests the nodes send to /v1/traces.
type collector struct {
	mu    sync.Mutex
	spans []span
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = z
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		node := attrs(rs.GetResource().GetAttributes())["service.instance.id"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, span{trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
					parent: hex.EncodeToString(s.ParentSpanId), name: s.Name, node: node, kind: s.Kind, attrs: attrs(s.Attributes)})
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.GetValue().GetStringValue()
	}
	return m
}

func (c *collector) all() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

// find returns the spans of trace (any trace when "") whose name is name.
func find(spans []span, trace, name string) []span {
	var out []span
	for _, s := range spans {
		if (trace == "" || s.trace == trace) && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// below reports the client spans (SQL, Redis) of dbSystem under s.
func below(spans []span, s span, dbSystem string) int {
	children := map[string][]span{}
	for _, x := range spans {
		if x.trace == s.trace {
			children[x.parent] = append(children[x.parent], x)
		}
	}
	n := 0
	var walk func(id string)
	walk = func(id string) {
		for _, c := range children[id] {
			if c.kind == tracepb.Span_SPAN_KIND_CLIENT && (c.attrs["db.system"] == dbSystem || c.attrs["db.system.name"] == dbSystem) {
				n++
			}
			walk(c.id)
		}
	}
	walk(s.id)
	return n
}

// TestTraceAcrossNodes follows a post and a chat message across two nodes
// on one database: the addActivity trace holds every fan-out page, run by
// workers of both nodes, with the pages' SQL; the sendMessage trace holds
// the unread bookkeeping job with its Redis commands, and the delivery of
// the message to a subscriber on the other node.
func TestTraceAcrossNodes(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	// The standard variables, read by the exporter as in production.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	ctx := context.Background()
	providers := map[string]*tracing.Provider{}
	nodes := map[string]*brooktest.Node{}
	runners := map[string]*workers.Runner{}
	for _, name := range []string{"node-a", "node-b"} {
		p, err := tracing.FromEnv(ctx, tracing.Options{InstanceID: name})
		if err != nil || p == nil {
			t.Fatalf("provider from the environment: %v, %v", p, err)
		}
		t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		providers[name] = p
		// No workers of the node's own: the test runs each job on the
		// node it chooses, so both nodes run fan-out pages.
		n := env.StartNode(t, brooktest.NodeOptions{Workers: -1,
			Node: func(o *node.Options) { o.Tracing, o.FeedPullThreshold = p, 1_000_000 },
			API:  func(o *api.Options) { o.Tracing = p }})
		nodes[name] = n
		r := workers.New(n.Store, n.Bus, workers.Options{BatchSize: 1, Tracer: p.TracerProvider()})
		n.Feeds.RegisterJobs(r)
		n.Chat.RegisterJobs(r, time.Hour)
		runners[name] = r
	}
	a, b := nodes["node-a"], nodes["node-b"]

	tag := brooktest.Tag()
	star, alice, bob := tag+"-star", tag+"-alice", tag+"-bob"
	env.AddUsers(t, a, star, alice, bob)
	const followers = 25_000 // three pages: one inline, two as jobs
	if _, err := a.Store.DB().Exec(ctx, `INSERT INTO follows (source, target, pull_from)
		SELECT 'timeline:' || $1 || '-f' || g, 'user:' || $2, '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $3) g`,
		tag, star, followers); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.DB().Exec(ctx, `INSERT INTO feeds (id, follower_count) VALUES ($1, $2)`, "user:"+star, followers); err != nil {
		t.Fatal(err)
	}

	// The post, on node a; its activity job on node a, then its pages one
	// at a time, node b first.
	a.Must(t, env.Token(t, star), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + star, "in": map[string]any{"verb": "post", "object": "big news"}}, nil)
	runAll(t, runners["node-a"], store.JobFeedActivity)
	pages := 0
	for turn := []string{"node-b", "node-a"}; ; pages++ {
		n, err := runners[turn[pages%2]].RunOnce(ctx, []string{store.JobFeedFanout})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if pages != 2 {
		t.Fatalf("ran %d fan-out page jobs, want 2", pages)
	}

	// A message from alice on node a, bob subscribed on node b; the
	// message job (unread bookkeeping) on node b.
	var ch struct{ CreateChannel struct{ ID string } }
	a.Must(t, env.Token(t, alice), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "trace-" + tag, "members": []string{bob}}}, &ch)
	cid := ch.CreateChannel.ID
	sub := b.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	topic := env.RedisPrefix + "bus:" + chat.ChannelTopic(cid)
	brooktest.Eventually(t, "node b subscribed to the channel in Redis", func() bool {
		n, err := b.State.Redis().PubSubNumSub(ctx, topic).Result()
		return err == nil && n[topic] > 0
	})
	a.Must(t, env.Token(t, alice), `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
		brooktest.Vars{"c": cid, "in": map[string]any{"text": "hello"}}, nil)
	runAll(t, runners["node-b"], store.ChatMessageKind)
	var got struct{ MessageAdded struct{ Text string } }
	sub.NextData(&got)

	var spans []span
	var post, send []span
	brooktest.Eventually(t, "the traces reached the collector", func() bool {
		for _, p := range providers {
			if err := p.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		spans = col.all()
		post, send = find(spans, "", "mutation addActivity"), find(spans, "", "mutation sendMessage")
		return len(post) == 1 && len(send) == 1 && len(find(spans, send[0].trace, "deliver chat")) > 0
	})

	t.Logf("%d spans collected; addActivity trace %d spans, sendMessage trace %d spans", len(spans),
		len(inTrace(spans, post[0].trace)), len(inTrace(spans, send[0].trace)))
	// addActivity: the activity job and both pages in its trace, the
	// pages on both nodes, each with its SQL.
	tr := post[0].trace
	if post[0].node != "node-a" || below(spans, post[0], "postgresql") == 0 {
		t.Errorf("addActivity span: node %q, %d SQL spans below", post[0].node, below(spans, post[0], "postgresql"))
	}
	if jobs := find(spans, tr, "job "+store.JobFeedActivity); len(jobs) != 1 {
		t.Errorf("activity job spans in the addActivity trace: %d", len(jobs))
	}
	ran := map[string]bool{}
	for _, page := range find(spans, tr, "job "+store.JobFeedFanout) {
		ran[page.node] = true
		if n := below(spans, page, "postgresql"); n == 0 {
			t.Errorf("fan-out page on %s has no SQL spans", page.node)
		}
	}
	if len(find(spans, tr, "job "+store.JobFeedFanout)) != 2 || !ran["node-a"] || !ran["node-b"] {
		t.Errorf("fan-out page spans in the addActivity trace: %d, on %v", len(find(spans, tr, "job "+store.JobFeedFanout)), ran)
	}

	// sendMessage: the unread bookkeeping job on node b with its Redis
	// commands, and the delivery to bob's subscription on node b.
	tr = send[0].trace
	jobs := find(spans, tr, "job "+store.ChatMessageKind)
	if len(jobs) != 1 || jobs[0].node != "node-b" {
		t.Fatalf("message job spans in the sendMessage trace: %+v", jobs)
	}
	if n := below(spans, jobs[0], "redis"); n == 0 {
		t.Errorf("the message job has no Redis spans")
	}
	delivered := false
	for _, d := range find(spans, tr, "deliver chat") {
		if d.node == "node-b" && d.attrs["messaging.destination.name"] == chat.ChannelTopic(cid) {
			delivered = true
		}
	}
	if !delivered {
		t.Errorf("no delivery span on node b in the sendMessage trace")
	}
	if got.MessageAdded.Text != "hello" {
		t.Errorf("bob received %+v", got)
	}
	for _, s := range spans {
		if strings.HasPrefix(s.name, "job ") && s.node == "" {
			t.Errorf("span %s without service.instance.id", s.name)
		}
	}
}

func inTrace(spans []span, trace string) []span {
	var out []span
	for _, s := range spans {
		if s.trace == trace {
			out = append(out, s)
		}
	}
	return out
}

// runAll runs the ready jobs of kind on r until none is left.
func runAll(t *testing.T, r *workers.Runner, kind string) {
	t.Helper()
	for {
		n, err := r.RunOnce(context.Background(), []string{kind})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}
