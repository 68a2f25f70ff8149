package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// TestFeedActivitiesWithMatchesTheLookups checks that what a page reads
// with its activities is what the batched lookups the loaders use answer,
// activity by activity (a missing actor, no reactions, null data included).
func TestFeedActivitiesWithMatchesTheLookups(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	db := s.DB()
	for _, q := range []string{
		`INSERT INTO users (id, name) VALUES ('fpw-a', 'A'), ('fpw-v', 'V') ON CONFLICT DO NOTHING`,
		// Six activities by fpw-a and one by a user that does not exist.
		`INSERT INTO activities (id, feed_id, actor_id, verb, object, time, to_feeds, created_at, updated_at)
			SELECT ('018f0000-0000-7000-8000-00000000000' || g)::uuid, 'user:fpw-a', CASE WHEN g = 7 THEN 'fpw-gone' ELSE 'fpw-a' END,
				'post', 'o' || g, now(), '{}', now(), now() FROM generate_series(1, 7) g ON CONFLICT DO NOTHING`,
		`INSERT INTO feed_entries (feed_id, activity_id, origin) SELECT 'user:fpw-a', id, 'user:fpw-a' FROM activities WHERE feed_id = 'user:fpw-a' ON CONFLICT DO NOTHING`,
		`INSERT INTO reactions (id, activity_id, user_id, kind, data) SELECT ('018f0000-0000-7000-9000-0000000000' || g || k)::uuid,
			('018f0000-0000-7000-8000-00000000000' || g)::uuid, 'fpw-v', CASE k WHEN 1 THEN 'like' ELSE 'clap' END,
			CASE k WHEN 1 THEN NULL ELSE '{"n": 1}'::jsonb END FROM generate_series(1, 4) g, generate_series(1, 2) k WHERE g % 2 = 0 OR k = 1
			ON CONFLICT DO NOTHING`,
		`INSERT INTO reaction_counts (activity_id, kind, count) SELECT activity_id, kind, count(*) FROM reactions
			WHERE user_id = 'fpw-v' GROUP BY 1, 2 ON CONFLICT (activity_id, kind) DO UPDATE SET count = excluded.count`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	f, err := store.ParseFeedID("feed", "user:fpw-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, with := range []store.PageWith{{Actors: true, Counts: true, Viewer: "fpw-v"}, {Counts: true}, {}} {
		page, extras, err := s.FeedActivitiesWith(ctx, f, uuid.Nil, 5, with)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := s.FeedActivities(ctx, f, uuid.Nil, 5)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(page, plain) || len(extras) != 5 {
			t.Fatalf("%+v: page differs from FeedActivities or %d extras", with, len(extras))
		}
		other, err := s.ActivityExtras(ctx, page.Items, with)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uuid.UUID, len(page.Items))
		actors := make([]string, len(page.Items))
		for i, a := range page.Items {
			ids[i], actors[i] = a.ID, a.ActorID
		}
		users, err := s.UsersByID(ctx, actors)
		if err != nil {
			t.Fatal(err)
		}
		counts, err := s.ReactionCounts(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		own, err := s.OwnReactions(ctx, "fpw-v", ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range page.Items {
			var want store.ActivityExtras
			if with.Actors {
				want.Actor = users[i]
			}
			if with.Counts {
				want.Counts = counts[i]
			}
			if with.Viewer != "" {
				want.Own = own[i]
			}
			got := extras[i]
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%+v: activity %s read %+v, the lookups %+v", with, a.ID, got, want)
			}
			if !reflect.DeepEqual(other[i], got) {
				t.Fatalf("%+v: ActivityExtras %+v, page %+v", with, other[i], got)
			}
		}
	}
}
