package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/auth"
)

// Dev mode against given PostgreSQL and Redis with a configured secret
// (a container, say) has nothing that creates the data directory: the
// welcome creates it, for this user only, and writes the tokens it
// printed there, readable by this user only.
func TestDevWelcomeCreatesTheDataDir(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dev = true
	cfg.DataDir = filepath.Join(t.TempDir(), "not-there")
	n := startNode(t, cfg)
	out := n.out.String()

	dir, err := os.Stat(cfg.DataDir)
	if err != nil || dir.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v, want mode 0700", dir, err)
	}
	path := filepath.Join(cfg.DataDir, "tokens.env")
	file, err := os.Stat(path)
	if err != nil || file.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.env: %v %v, want mode 0600", file, err)
	}
	if !strings.Contains(out, "(also in "+path+" as ALICE_TOKEN=") {
		t.Fatalf("the welcome does not say where the tokens are:\n%s", out)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys([]byte(cfg.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != len(welcomeTokens) {
		t.Fatalf("tokens.env holds %d lines, want %d:\n%s", len(lines), len(welcomeTokens), text)
	}
	for i, w := range welcomeTokens {
		name, tok, _ := strings.Cut(lines[i], "=")
		id, err := keys.Verify(tok)
		if name != strings.ToUpper(w.user)+"_TOKEN" || err != nil || id.UserID != w.user || id.IsAdmin() != w.admin {
			t.Fatalf("tokens.env line %d: %s (%+v, %v), want %s's", i, lines[i], id, err, w.user)
		}
		if !strings.Contains(out, tok) {
			t.Fatalf("%s's token in tokens.env is not the one printed:\n%s", w.user, out)
		}
	}
	got := query(t, n.addr, lines[0][len("ALICE_TOKEN="):], `{ me { id name } }`)
	if fmt.Sprint(got["data"]) != "map[me:map[id:alice name:Alice]]" {
		t.Fatalf("me with the printed token: %v", got)
	}
}

// A data directory that cannot be created costs the shell file, with a
// warning, never the server.
func TestDevWelcomeSurvivesAnUnwritableDataDir(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dev = true
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(blocker, "data") // under a file: never a directory
	n := startNode(t, cfg)
	out := n.out.String()
	if !strings.Contains(out, "tokens not written for the shell") || !strings.Contains(out, "admin  ey") {
		t.Fatalf("want the tokens printed and a warning that tokens.env was not written:\n%s", out)
	}
	if strings.Contains(out, "(also in ") {
		t.Fatalf("the welcome points at a file it could not write:\n%s", out)
	}
	if got := query(t, n.addr, token(t, cfg, "alice"), `{ me { id } }`); fmt.Sprint(got["data"]) != "map[me:map[id:alice]]" {
		t.Fatalf("me: %v", got)
	}
}

// Outside dev mode, a private PostgreSQL still gets a welcome, but no
// token (stdout lands in journald or docker logs), no tokens.env and no
// demo users.
func TestNoWelcomeTokensOutsideDevMode(t *testing.T) {
	cfg := testConfig(t)
	cfg.DatabaseURL = "" // private PostgreSQL; Redis stays the shared one
	n := startNode(t, cfg)
	out := n.out.String()
	if !strings.Contains(out, "Brook is running") || !strings.Contains(out, "brook token <user_id>") {
		t.Fatalf("welcome text missing:\n%s", out)
	}
	if strings.Contains(out, "eyJ") || strings.Contains(out, "_TOKEN") {
		t.Fatalf("a token was printed outside dev mode:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "tokens.env")); !os.IsNotExist(err) {
		t.Fatalf("tokens.env written outside dev mode: %v", err)
	}
	if got := query(t, n.addr, token(t, cfg, "alice"), `{ user(id: "bob") { id } }`); fmt.Sprint(got["data"]) != "map[user:<nil>]" {
		t.Fatalf("demo user bob outside dev mode: %v", got)
	}
}

// A tokens.env left with a wider mode (by hand, or an older Brook) is
// replaced by one readable by this user only.
func TestTokensFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.env")
	if err := os.WriteFile(path, []byte("OLD=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := writeTokensFile(context.Background(), dir, "ALICE_TOKEN=x\n"); err != nil || got != path {
		t.Fatalf("writeTokensFile: %q %v", got, err)
	}
	st, err := os.Stat(path)
	text, _ := os.ReadFile(path)
	if err != nil || st.Mode().Perm() != 0o600 || string(text) != "ALICE_TOKEN=x\n" {
		t.Fatalf("tokens.env: %v %v %q, want mode 0600 and the new text", st, err, text)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "tokens.env.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
