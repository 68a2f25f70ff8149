package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// env is shared by every integration test of the GraphQL API in this package.
var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }
