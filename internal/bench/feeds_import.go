package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/store"
)

// importFigures measures importActivities and importFollows through
// GraphQL (JSON over HTTP, validation, COPY into the transaction's staging
// table, one merge) against a raw COPY of the same rows straight into the
// tables, the floor of any bulk write; and a repeat of the activity
// import, which writes nothing.
func importFigures(ctx context.Context, h *harness, st *store.Store, srv *server, rows int, t *table) error {
	db := st.DB()
	fmt.Fprintf(os.Stderr, "bench: feeds: imports of %d rows\n", rows)
	if _, err := db.Exec(ctx, `INSERT INTO users (id, name) SELECT 'u' || g, 'User ' || g FROM generate_series(1, $1) g
		ON CONFLICT DO NOTHING`, rows); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `INSERT INTO users (id, name) VALUES ('imp', 'Imported'), ('impraw', 'Raw'), ('impf', 'Followed'), ('impfraw', 'Raw followed')
		ON CONFLICT DO NOTHING`); err != nil {
		return err
	}
	admin := srv.Client(h.token("root", true))
	base := time.Now().UTC().Add(-time.Duration(rows)*time.Second - time.Hour).Truncate(time.Second)
	acts := make([]map[string]any, rows)
	for i := range acts {
		acts[i] = map[string]any{"verb": "post", "object": fmt.Sprintf("photo:%d", i), "foreignId": fmt.Sprintf("old-%d", i),
			"time": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "data": map[string]any{"caption": "imported"}}
	}
	edges := make([]map[string]any, rows)
	for i := range edges {
		edges[i] = map[string]any{"source": fmt.Sprintf("timeline:u%d", i+1), "target": "user:impf"}
	}
	type result struct{ Inserted, Skipped int }
	timed := func(f func() error) (time.Duration, error) {
		if _, err := db.Exec(ctx, `CHECKPOINT`); err != nil {
			return 0, err
		}
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	importActs := func(want result) func() error {
		return func() error {
			var out struct{ ImportActivities result }
			if err := admin.Run(ctx, `mutation($a: [ImportedActivityInput!]!) { importActivities(feed: "user:imp", activities: $a) { inserted skipped } }`,
				client.Vars{"a": acts}, &out); err != nil {
				return err
			}
			if out.ImportActivities != want {
				return fmt.Errorf("importActivities = %+v, want %+v", out.ImportActivities, want)
			}
			return nil
		}
	}
	paths := []struct {
		name, raw string
		run       func() error
	}{
		{"raw COPY of activities and their feed rows (one transaction)", "", func() error {
			return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				ids := make([]any, rows)
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"activities"}, []string{"id", "feed_id", "actor_id", "verb", "object", "foreign_id", "time", "data", "created_at", "updated_at"},
					pgx.CopyFromSlice(rows, func(i int) ([]any, error) {
						at := base.Add(time.Duration(i) * time.Second)
						ids[i] = uuidAt(at)
						return []any{ids[i], "user:impraw", "impraw", "post", fmt.Sprintf("photo:%d", i), fmt.Sprintf("old-%d", i), at, `{"caption": "imported"}`, at, at}, nil
					}))
				if err != nil {
					return err
				}
				_, err = tx.CopyFrom(ctx, pgx.Identifier{"feed_entries"}, []string{"feed_id", "activity_id", "origin"},
					pgx.CopyFromSlice(rows, func(i int) ([]any, error) { return []any{"user:impraw", ids[i], "user:impraw"}, nil }))
				return err
			})
		}},
		{"importActivities (GraphQL, COPY to staging, one merge)", "activities", importActs(result{rows, 0})},
		{"importActivities again (every row skipped)", "activities", importActs(result{0, rows})},
		{"raw COPY of follows and the follower count (one transaction)", "", func() error {
			return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"follows"}, []string{"source", "target", "pull_from"},
					pgx.CopyFromSlice(rows, func(i int) ([]any, error) {
						return []any{fmt.Sprintf("timeline:u%d", i+1), "user:impfraw", store.NewID()}, nil
					}))
				if err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `INSERT INTO feeds (id, follower_count) VALUES ('user:impfraw', $1)
					ON CONFLICT (id) DO UPDATE SET follower_count = feeds.follower_count + $1`, rows)
				return err
			})
		}},
		{"importFollows (GraphQL, COPY to staging, one merge)", "follows", func() error {
			var out struct{ ImportFollows result }
			if err := admin.Run(ctx, `mutation($e: [FollowEdgeInput!]!) { importFollows(edges: $e) { inserted skipped } }`,
				client.Vars{"e": edges}, &out); err != nil {
				return err
			}
			if out.ImportFollows != (result{rows, 0}) {
				return fmt.Errorf("importFollows = %+v", out.ImportFollows)
			}
			return nil
		}},
	}
	var rawRate float64
	for _, p := range paths {
		fmt.Fprintf(os.Stderr, "bench: feeds: %s\n", p.name)
		d, err := timed(p.run)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rate := float64(rows) / d.Seconds()
		vs := "-"
		if p.raw == "" {
			rawRate = rate
		} else {
			vs = fmt.Sprintf("%.0f%%", 100*rate/rawRate)
		}
		t.add(p.name, rows, fmt.Sprintf("%.2f s", d.Seconds()), fmt.Sprintf("%.0f", rate), vs)
	}
	t.note("One run each, one batch of %d per call; the GraphQL paths include building and sending the JSON (BROOK_MAX_BODY_BYTES raised for it) and gqlgen decoding it. The imported feed has no followers, so both activity paths write the same rows: activities and their origin feed rows.", rows)
	return nil
}
