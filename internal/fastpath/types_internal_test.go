package fastpath

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
)

// The writer's times and ids are the bytes of gqlgen's marshallers, in
// any location, with and without fractions of a second.
func TestTimesAndIDsAsGQLGenWritesThem(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("x", -3*3600-1800), time.FixedZone("y", 14*3600)}
	for i := 0; i < 2000; i++ {
		tm := time.Unix(r.Int64N(1<<35)-1<<34, 0).In(zones[i%len(zones)])
		switch i % 3 {
		case 1:
			tm = tm.Add(time.Duration(r.Int64N(1e9)))
		case 2:
			tm = tm.Add(time.Duration(r.Int64N(1000)) * time.Millisecond)
		}
		var id uuid.UUID
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		var want bytes.Buffer
		graphql.MarshalTime(tm).MarshalGQL(&want)
		graphql.MarshalUUID(id).MarshalGQL(&want)
		w := &writer{}
		w.time(tm)
		w.uuid(id)
		if !bytes.Equal(w.buf.Bytes(), want.Bytes()) {
			t.Fatalf("wrote %s, gqlgen %s", w.buf.Bytes(), want.Bytes())
		}
	}
}
