package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Ids scan as they did through uuid.UUID's own Scan, in the binary format
// (the store's codec) and in the text one (left to pgx): values, NULLs
// into pointers and into values (left as they were), and arrays.
func TestUUIDsScanAsBefore(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		var (
			one     uuid.UUID
			null    = &a
			kept    = b
			ids     []uuid.UUID
			withNil []*uuid.UUID
		)
		err := s.DB().QueryRow(ctx, `SELECT $1::uuid, NULL::uuid, NULL::uuid, ARRAY[$1::uuid, $2::uuid], ARRAY[$2::uuid, NULL]`, mode, a, b).
			Scan(&one, &null, &kept, &ids, &withNil)
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if one != a || null != nil || kept != b || len(ids) != 2 || ids[0] != a || ids[1] != b ||
			len(withNil) != 2 || withNil[0] == nil || *withNil[0] != b || withNil[1] != nil {
			t.Fatalf("mode %v: %v %v %v %v %v", mode, one, null, kept, ids, withNil)
		}
	}
}
