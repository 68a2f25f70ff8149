package webhooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/webhooks"
)

// snippetCase is one signature a docs snippet is asked to verify.
type snippetCase struct {
	Secret, Header, Body string
}

// snippetCases are signatures Brook makes, and the ones a receiver must
// refuse, with the answer the docs' verify functions must give each.
func snippetCases() ([]snippetCase, []bool) {
	body := `{"type":"message.new","created_at":"2026-12-07T10:00:00Z","channel":"messaging:general","message":{"text":"hi ✓"}}`
	now := time.Now()
	good := webhooks.Sign(secret, now, []byte(body))
	return []snippetCase{
			{secret, good, body},
			{secret, good, strings.Replace(body, "hi", "ho", 1)},                          // a tampered body
			{"another-secret-000000", good, body},                                         // another secret
			{secret, webhooks.Sign(secret, now.Add(-10*time.Minute), []byte(body)), body}, // replayed
			{secret, "t=1,v1=00", body},                                                   // garbage
			{secret, fmt.Sprintf("t=%d,v1=00", now.Unix()), body},                         // a fresh time, a short signature
		},
		[]bool{true, false, false, false, false, false}
}

// codeBlock returns the fenced block of lang that follows marker in
// docs/webhooks.md.
func codeBlock(t *testing.T, marker, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/webhooks.md has no %q", marker)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("no %s block after %q in docs/webhooks.md", lang, marker)
	}
	return m[1]
}

// The Go verification snippet of docs/webhooks.md, compiled as it is
// printed, accepts Brook's signatures and refuses tampered, foreign and
// replayed ones.
func TestDocsGoVerifySnippet(t *testing.T) {
	t.Parallel()
	snippet := codeBlock(t, "Verifying in Go", "go")
	dir := t.TempDir()
	prog := `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	var cases []struct{ Secret, Header, Body string }
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for _, c := range cases {
		fmt.Println(verify(c.Secret, c.Header, []byte(c.Body)))
	}
}

` + snippet
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	runSnippet(t, exec.Command("go", "run", filepath.Join(dir, "main.go")))
}

// The Node verification snippet of docs/webhooks.md, run by node as it
// is printed, does the same.
func TestDocsNodeVerifySnippet(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node here")
	}
	snippet := codeBlock(t, "Verifying in Node", "js")
	prog := snippet + `
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  for (const c of JSON.parse(input)) {
    console.log(verify(c.Secret, c.Header, Buffer.from(c.Body)) ? "true" : "false");
  }
});
`
	runSnippet(t, exec.Command(node, "-e", prog))
}

// runSnippet feeds the cases to cmd and checks its answers, one a line.
func runSnippet(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cases, want := snippetCases()
	in, _ := json.Marshal(cases)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Args[0], err, stderr.String())
	}
	var got []bool
	for _, line := range strings.Fields(string(out)) {
		got = append(got, line == "true")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the snippet answered %v for (good, tampered, other secret, replayed, garbage), want %v", got, want)
	}
}
