package webhooks_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// env is shared by the webhooks tests: real nodes, PostgreSQL and Redis,
// and real HTTP receivers the tests start.
var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }
