package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// Without Node.js the PostGraphile rows are skipped with a reason, not a
// failure of the whole benchmark.
func TestInstallPostGraphileWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := installPostGraphile(context.Background())
	if err == nil || !strings.Contains(err.Error(), "node is not installed") {
		t.Fatalf("err = %v, want node is not installed", err)
	}
}

func TestProcStatParsesOwnProcess(t *testing.T) {
	s, ok := procStat(os.Getpid())
	if !ok || s.ppid != os.Getppid() || s.cpu < 0 {
		t.Fatalf("procStat(self) = %+v, %v; parent %d", s, ok, os.Getppid())
	}
}
