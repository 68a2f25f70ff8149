package ephemeral_test

import (
	"context"
	"os"
	"testing"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
)

var env *local.Env

func TestMain(m *testing.M) {
	os.Exit(local.TestMain(m, func(e *local.Env) error {
		env = e
		return nil
	}))
}

// open connects to the test binary's Redis, as one node would.
func open(t testing.TB) *ephemeral.State {
	t.Helper()
	s, err := ephemeral.Open(context.Background(), ephemeral.Options{RedisURL: env.RedisURL, Prefix: env.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
