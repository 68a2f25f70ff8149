package users_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// env is shared by the users tests: real nodes through the GraphQL API,
// against the test binary's own PostgreSQL database and Redis server.
var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }
