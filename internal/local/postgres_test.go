package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A second start on a data directory whose server is running says so in
// words, naming the directory and the pid, instead of PostgreSQL's
// postmaster.pid complaint five times over.
func TestSecondStartOnARunningDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	first, err := Dev(ctx, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	second, err := Dev(ctx, dir, "", "")
	if err == nil {
		second.Close()
		t.Fatal("a second Dev on a running data directory started")
	}
	var running *AlreadyRunningError
	if !errors.As(err, &running) || running.PID != first.Postgres.cmd.Process.Pid {
		t.Fatalf("want an AlreadyRunningError with the first server's pid %d, got %v", first.Postgres.cmd.Process.Pid, err)
	}
	for _, want := range []string{"Brook is already running with data directory " + dir + " ", "stop it first", "BROOK_DATA_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}

	// StartPostgres on the cluster itself (what `brook migrate` does)
	// refuses the same way, naming the cluster's directory.
	pgDir := filepath.Join(dir, "postgres")
	if _, err := StartPostgres(ctx, pgDir, false); !errors.As(err, &running) || !strings.Contains(err.Error(), pgDir) {
		t.Fatalf("a second StartPostgres: %v", err)
	}
	// The first server was left alone.
	if err := first.Postgres.CreateDatabase(ctx, "still_there"); err != nil {
		t.Fatalf("the running server after the refused starts: %v", err)
	}
}

// A postmaster.pid left by a server that died (kill -9, a crash, a
// reboot) does not block the next start: PostgreSQL sees the pid is gone,
// recovers and starts.
func TestStartAfterTheServerDied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "postgres")
	pg, err := StartPostgres(ctx, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("a killed server leaves its postmaster.pid, or this test shows nothing: %v", err)
	}
	again, err := StartPostgres(ctx, dir, false)
	if err != nil {
		t.Fatalf("start after the server died: %v", err)
	}
	defer again.Kill()
	if err := again.CreateDatabase(ctx, "after_crash"); err != nil {
		t.Fatal(err)
	}
}

// A postmaster.pid naming a live process that is not PostgreSQL (its pid
// was reused after a reboot) is stale too.
func TestRunningPostmasterIgnoresOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	if _, ok := runningPostmaster(dir); ok {
		t.Fatal("no postmaster.pid, yet a server is running")
	}
	for _, content := range []string{"", "garbage\n", "0\n", "-1\n", "999999999\n" + dir + "\n", strings.Repeat("\n", 3)} {
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if pid, ok := runningPostmaster(dir); ok {
			t.Errorf("postmaster.pid %q: running as pid %d", content, pid)
		}
	}
	if _, err := os.Stat("/proc/self/comm"); err == nil {
		// This test binary is alive and is not PostgreSQL.
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(strings.Join([]string{strconv.Itoa(os.Getpid()), dir, "0", "5432"}, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		if pid, ok := runningPostmaster(dir); ok {
			t.Errorf("a live process that is not PostgreSQL (pid %d) counted as the server", pid)
		}
	}
}
