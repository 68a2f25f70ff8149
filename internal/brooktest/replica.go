package brooktest

import (
	"context"
	"testing"
	"time"
)

// CaughtUp waits until the replica (BROOK_TEST_PG=replica) has replayed
// every write made so far; without a replica it returns at once. A user's
// reads see their own writes at once (read your writes), but another
// user's reads may run on the replica and lag behind for up to
// BROOK_REPLICA_MAX_LAG, as in production: a test that has one user read
// what another has just written waits for the replica first.
func (e *Env) CaughtUp(t testing.TB) {
	t.Helper()
	if e.Replica == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Replica.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}
