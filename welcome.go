package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

// welcomeTokens are the tokens dev mode prints at start, in order: the
// demo users and an admin. Valid for a day.
var welcomeTokens = []struct {
	user  string
	admin bool
}{{"alice", false}, {"bob", false}, {"carol", false}, {"admin", true}}

// tokensFile is the name, in the data directory, of the shell file dev
// mode writes its tokens to (`. .data/tokens.env`, then $ALICE_TOKEN).
const tokensFile = "tokens.env"

// printWelcome tells a newcomer where to go. In dev mode only, it also
// prints tokens and writes them to tokens.env: stdout usually ends up in
// journald or docker logs, and an admin token there is anyone's who reads
// them. Nothing here may stop the server: a token file that cannot be
// written is a warning.
func printWelcome(ctx context.Context, out io.Writer, log *slog.Logger, addr string, keys *auth.Keys, cfg Config) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" || host == "127.0.0.1" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(out, `
  Brook is running.

    GraphiQL   %s/
    API        %s/query   (WebSocket: ws://%s/query)
`, base, base, net.JoinHostPort(host, port))
	if cfg.Dev {
		printDevTokens(ctx, out, log, keys, cfg.DataDir)
		fmt.Fprintln(out, "  Dev mode: alice, bob and carol exist; GraphiQL starts signed in as alice.")
	} else {
		fmt.Fprintln(out, "\n  Tokens: brook token <user_id> [--admin]   (go run . token ... in the repository)")
	}
	if _, err := os.Stat(filepath.Join(cfg.WebDir, "index.html")); err == nil {
		fmt.Fprintf(out, "  Demo app:  %s/app/   (sign in as anyone; open a second window as someone else)\n", base)
	}
	fmt.Fprintln(out)
}

// printDevTokens prints dev mode's welcome tokens and writes them to
// tokens.env in dataDir, saying where when it could.
func printDevTokens(ctx context.Context, out io.Writer, log *slog.Logger, keys *auth.Keys, dataDir string) {
	var lines, env strings.Builder
	for _, w := range welcomeTokens {
		tok, err := keys.Issue(w.user, w.admin, 24*time.Hour)
		if err != nil {
			log.WarnContext(ctx, "welcome: no tokens printed", "err", err)
			return
		}
		role := ""
		if w.admin {
			role = "   (role admin: may do anything)"
		}
		fmt.Fprintf(&lines, "    %-6s %s%s\n", w.user, tok, role)
		fmt.Fprintf(&env, "%s_TOKEN=%s\n", strings.ToUpper(w.user), tok)
	}
	where := ""
	path, err := writeTokensFile(ctx, dataDir, env.String())
	if err != nil {
		log.WarnContext(ctx, "welcome: tokens not written for the shell", "err", err)
	} else {
		where = fmt.Sprintf(" (also in %s as ALICE_TOKEN=... for the shell)", path)
	}
	fmt.Fprintf(out, `
  Tokens, valid 24 h%s:

%s
  In GraphiQL's Headers tab: {"Authorization": "Bearer <token>"}, then run { me { id name } }
  More tokens: go run . token <user_id> [--admin]
`, where, lines.String())
}

// writeTokensFile writes text to dataDir/tokens.env, readable by this
// user only, creating dataDir (0700) when it is missing: with external
// servers and a configured secret nothing else creates it. The file is
// written aside and renamed, so an older file's wider mode does not
// survive and a reader never sees half of it.
func writeTokensFile(ctx context.Context, dataDir, text string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create the data directory: %w", err)
	}
	path := filepath.Join(dataDir, tokensFile)
	f, err := os.CreateTemp(dataDir, tokensFile+".*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // gone once renamed; removes it on failure
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
