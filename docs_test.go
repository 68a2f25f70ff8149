package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// The docs' examples run as pasted. Every ```graphql block of README.md
// and docs/*.md is run, in the order of its file, against a node of its
// own in dev mode (a fresh database with the demo users alice, bob and
// carol), as CONTRIBUTING.md describes:
//
//   - its first line says whose token it runs with: `# as alice` (alice,
//     bob, carol, admin for an admin, or any other user id);
//   - `# as carol, fails with FORBIDDEN` expects that error code;
//   - `"<addActivity.id>"` stands for a value an earlier answer gave: the
//     path starts at a root field of the latest answer that had it (list
//     items by number: `<feed.activities.edges.0.node.id>`), and the text
//     around the example tells the reader to paste it;
//   - a subscription is started over a WebSocket and must deliver an event
//     before the file's last example has run;
//   - `# after uploading "TEXT"` on the second line first PUTs TEXT to the
//     latest createUpload answer's uploadUrl with its headers, as the text
//     around the example tells the reader to do with curl.
func TestDocsExamplesRunAsPasted(t *testing.T) {
	files := []string{"README.md"}
	more, _ := filepath.Glob("docs/*.md")
	sort.Strings(more)
	files = append(files, more...)
	total := 0
	for _, f := range files {
		examples, err := readExamples(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(examples) == 0 {
			continue
		}
		total += len(examples)
		t.Run(f, func(t *testing.T) { runExamples(t, examples) })
	}
	if total == 0 {
		t.Fatal("no GraphQL examples found in README.md and docs/")
	}
}

// example is one ```graphql block.
type example struct {
	file  string
	line  int
	user  string
	fails string // the expected error code, if any
	query string
	// upload is what to PUT to the latest upload ticket first, if any.
	upload *string
}

var uploadLine = regexp.MustCompile(`^#\s*after uploading\s+"(.*)"\s*$`)

var asLine = regexp.MustCompile(`^#\s*as\s+([A-Za-z0-9_@.-]+)(?:\s*,\s*fails with\s+([A-Z_]+))?\s*$`)

// readExamples returns the ```graphql blocks of a markdown file.
func readExamples(path string) ([]example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []example
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```graphql" {
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		ex := example{file: path, line: start + 1, query: strings.Join(body, "\n")}
		first := ""
		if len(body) > 0 {
			first = strings.TrimSpace(body[0])
		}
		m := asLine.FindStringSubmatch(first)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: a GraphQL example must start with `# as <user>` (alice, bob, carol or admin), found %q", path, ex.line, first)
		}
		ex.user, ex.fails = m[1], m[2]
		if len(body) > 1 {
			if u := uploadLine.FindStringSubmatch(strings.TrimSpace(body[1])); u != nil {
				ex.upload = &u[1]
			}
		}
		out = append(out, ex)
	}
	return out, nil
}

var placeholder = regexp.MustCompile(`<([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)>`)

func runExamples(t *testing.T, examples []example) {
	cfg := testConfig(t)
	cfg.Dev = true
	dbURL, prefix, err := env.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.RedisPrefix = dbURL, prefix
	n := startNode(t, cfg)
	base := "http://" + n.addr
	ctx := context.Background()
	answers := map[string]any{} // root field -> its latest answer
	type live struct {
		ex     example
		events chan error
	}
	var subs []live
	for _, ex := range examples {
		where := fmt.Sprintf("%s:%d (as %s)", ex.file, ex.line, ex.user)
		query, err := fill(ex.query, answers)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if ex.upload != nil {
			if err := putUpload(ctx, answers, *ex.upload); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
		tok := token(t, cfg, ex.user)
		if ex.user == "admin" {
			tok = adminToken(t, cfg, ex.user)
		}
		if isSubscription(query) {
			conn, err := client.Dial(ctx, client.WebsocketURL(base), client.DialOptions{Payload: client.AuthPayload(tok)})
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			defer conn.Close()
			sub, err := conn.Subscribe(query, nil)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			events := make(chan error, 1)
			go func() {
				r, err := sub.Next(ctx)
				if err == nil {
					err = r.Err()
				}
				events <- err
			}()
			select {
			case err := <-events:
				// An answer at once is an error, or an event already.
				if err != nil {
					t.Fatalf("%s: the subscription failed: %v", where, err)
				}
				close(events)
			case <-time.After(300 * time.Millisecond):
			}
			subs = append(subs, live{ex, events})
			continue
		}
		r, err := client.New(base, tok).Do(ctx, query, nil)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if ex.fails != "" {
			if r.Code() != ex.fails {
				t.Fatalf("%s: want error %s, got %s %s", where, ex.fails, r.Code(), r.Data)
			}
			continue
		}
		if err := r.Err(); err != nil {
			t.Fatalf("%s: %v\n%s", where, err, query)
		}
		var data map[string]any
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for k, v := range data {
			answers[k] = v
		}
	}
	for _, s := range subs {
		select {
		case err, open := <-s.events:
			if open && err != nil {
				t.Errorf("%s:%d: the subscription failed: %v", s.ex.file, s.ex.line, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s:%d: the subscription delivered nothing while the file's examples ran", s.ex.file, s.ex.line)
		}
	}
}

// fill replaces the placeholders of a query with the values they name.
func fill(query string, answers map[string]any) (string, error) {
	var missing error
	out := placeholder.ReplaceAllStringFunc(query, func(m string) string {
		path := strings.Split(m[1:len(m)-1], ".")
		var v any = answers
		for _, p := range path {
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				i, err := strconv.Atoi(p)
				if err != nil || i >= len(x) {
					v = nil
				} else {
					v = x[i]
				}
			default:
				v = nil
			}
		}
		if v == nil {
			missing = fmt.Errorf("no earlier answer has %s", m)
			return m
		}
		return fmt.Sprint(v)
	})
	return out, missing
}

// isSubscription reports whether a document's operation is a subscription.
func isSubscription(query string) bool {
	for _, line := range strings.Split(query, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.HasPrefix(line, "subscription")
	}
	return false
}

func adminToken(t *testing.T, cfg Config, user string) string {
	t.Helper()
	var out strings.Builder
	if err := printToken(cfg, []string{user, "--admin"}, &out); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// Every relative link of README.md, CONTRIBUTING.md and docs/*.md names a
// file or directory that exists.
func TestDocsLinksResolve(t *testing.T) {
	files := []string{"README.md", "CONTRIBUTING.md"}
	more, _ := filepath.Glob("docs/*.md")
	files = append(files, more...)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inCode := false
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inCode = !inCode
			}
			if inCode {
				continue
			}
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
					t.Errorf("%s:%d: link %q does not resolve", f, i+1, m[1])
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no links found")
	}
	t.Logf("%d relative links checked", checked)
}

// putUpload sends body to the latest createUpload answer's uploadUrl, as
// the docs tell the reader to with curl.
func putUpload(ctx context.Context, answers map[string]any, body string) error {
	t, _ := answers["createUpload"].(map[string]any)
	url, _ := t["uploadUrl"].(string)
	if url == "" {
		return fmt.Errorf("no createUpload answer with an uploadUrl to upload to")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	hs, _ := t["headers"].([]any)
	for _, h := range hs {
		h, _ := h.(map[string]any)
		if name, _ := h["name"].(string); name != "Content-Length" {
			req.Header.Set(name, fmt.Sprint(h["value"]))
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT %s: %d %s", url, resp.StatusCode, msg)
	}
	return nil
}
