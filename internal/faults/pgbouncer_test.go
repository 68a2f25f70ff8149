package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/local"
)

// Fault 3 behind PgBouncer in transaction mode: PostgreSQL is SIGKILLed
// and restarted under the pooler, which stays up. Requests fail with
// UNAVAILABLE (PgBouncer's own errors are of class 08), and service
// resumes through the same pooler without restarting Brook or PgBouncer;
// nothing acknowledged is lost. The test's own checks go direct.
func TestPostgresRestartedBehindPgBouncer(t *testing.T) {
	local.ClusterTests(t)
	c := newCluster(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := local.StartPgBouncer(ctx, filepath.Join(t.TempDir(), "pgbouncer"), fmt.Sprintf("127.0.0.1:%d", c.pg.Port), "brook", 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	c.DatabaseURL = b.URL("brook")
	postgresRestartedUnderLoad(t, c, "fault 3 behind PgBouncer")
}
