package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/brookhq/brook/internal/auth"
)

// demoUsers are the users dev mode creates (id: name), so that the docs'
// examples run as pasted: they are written for alice, bob, carol and an
// admin.
var demoUsers = map[string]string{"alice": "Alice", "bob": "Bob", "carol": "Carol"}

// welcomeTokens are the tokens printed at start, in order: the demo users
// and an admin. Valid for a day.
var welcomeTokens = []struct {
	user  string
	admin bool
}{{"alice", false}, {"bob", false}, {"carol", false}, {"admin", true}}

// printWelcome tells a newcomer where to go and gives them tokens, and
// writes them to tokens.env in the data directory for shell examples
// (`. .data/tokens.env`, then $ALICE_TOKEN).
func printWelcome(out io.Writer, addr string, keys *auth.Keys, cfg Config) error {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" || host == "127.0.0.1" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	var lines, env strings.Builder
	for _, w := range welcomeTokens {
		tok, err := keys.Issue(w.user, w.admin, 24*time.Hour)
		if err != nil {
			return err
		}
		role := ""
		if w.admin {
			role = "   (role admin: may do anything)"
		}
		fmt.Fprintf(&lines, "    %-6s %s%s\n", w.user, tok, role)
		fmt.Fprintf(&env, "%s_TOKEN=%s\n", strings.ToUpper(w.user), tok)
	}
	envPath := filepath.Join(cfg.DataDir, "tokens.env")
	if err := os.WriteFile(envPath, []byte(env.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", envPath, err)
	}
	fmt.Fprintf(out, `
  Brook is running.

    GraphiQL   %s/
    API        %s/query   (WebSocket: ws://%s/query)

  Tokens, valid 24 h (also in %s as ALICE_TOKEN=... for the shell):

%s
  In GraphiQL's Headers tab: {"Authorization": "Bearer <token>"}, then run { me { id name } }
  More tokens: go run . token <user_id> [--admin]
`, base, base, net.JoinHostPort(host, port), envPath, lines.String())
	if cfg.Dev {
		fmt.Fprintln(out, "  Dev mode: alice, bob and carol exist; GraphiQL starts signed in as alice.")
	}
	if _, err := os.Stat(filepath.Join(cfg.WebDir, "index.html")); err == nil {
		fmt.Fprintf(out, "  Demo app:  %s/app/   (sign in as anyone; open a second window as someone else)\n", base)
	}
	fmt.Fprintln(out)
	return nil
}
