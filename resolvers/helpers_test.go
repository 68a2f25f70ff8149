package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// callTag returns a short random tag that keeps a test's users apart from
// those of tests running beside it on the same database.
func callTag() string { return brooktest.Tag() }

// callUsers creates users (with an admin token).
func callUsers(t *testing.T, n *brooktest.Node, ids ...string) { env.AddUsers(t, n, ids...) }
