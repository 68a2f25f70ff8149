package uploads_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// env is shared by the uploads tests: real nodes over the test binary's
// own PostgreSQL and Redis; files on local disk or in a SeaweedFS S3
// server the tests start.
var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }
