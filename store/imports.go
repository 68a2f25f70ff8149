package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MaxImportBatch caps the edges or activities of one import call.
const MaxImportBatch = 100_000

// importClockSkew is how far in the future an imported activity's time may
// be: a little, for clocks that run ahead.
const importClockSkew = time.Minute

// FollowEdgeInput is one follow of an importFollows batch: Source (a
// timeline) follows Target (a user feed).
type FollowEdgeInput struct {
	Source string
	Target string
}

// ImportedActivityInput is one activity of an importActivities batch. Its
// actor is the owner of the feed it is imported into. ForeignID and Time
// are required: they make the import idempotent.
type ImportedActivityInput struct {
	Verb      string
	Object    string
	Target    *string
	ForeignID string
	Time      time.Time
	Data      json.RawMessage
}

// ImportResult counts what an import wrote: Inserted new rows, Skipped
// rows that existed already (or repeated one earlier in the batch).
type ImportResult struct {
	Inserted int
	Skipped  int
	// TimelineEntries counts the timeline rows the import wrote (its
	// followers' copies of imported activities, or the activities the
	// imported follows copied): for tools and benchmarks, not the API.
	TimelineEntries int
}

// CheckImportSize checks the length of an import batch.
func CheckImportSize(field string, n int) error {
	if n > MaxImportBatch {
		return Invalid(field, "has %d items; one import takes at most %d: split it into batches", n, MaxImportBatch)
	}
	return nil
}

// CheckFollowEdges validates an importFollows batch before anything is
// written: every source a timeline, every target a user feed.
func CheckFollowEdges(edges []FollowEdgeInput) error {
	if err := CheckImportSize("edges", len(edges)); err != nil {
		return err
	}
	for i, e := range edges {
		src, err := ParseFeedID(fmt.Sprintf("edges[%d].source", i), e.Source)
		if err != nil {
			return err
		}
		if src.Group != GroupTimeline {
			return Invalid(fmt.Sprintf("edges[%d].source", i), "only timeline feeds follow others: use timeline:%s", src.OwnerID)
		}
		dst, err := ParseFeedID(fmt.Sprintf("edges[%d].target", i), e.Target)
		if err != nil {
			return err
		}
		if dst.Group != GroupUser {
			return Invalid(fmt.Sprintf("edges[%d].target", i), "only user feeds can be followed: use user:%s", dst.OwnerID)
		}
	}
	return nil
}

// CheckImportedActivities validates an importActivities batch before
// anything is written and returns each activity's id: a time-ordered id
// made from the activity's time, so that imported history sits in feeds
// in the order it happened. Times are truncated to the microsecond, as
// PostgreSQL keeps them.
func CheckImportedActivities(acts []ImportedActivityInput, now time.Time) ([]uuid.UUID, error) {
	if err := CheckImportSize("activities", len(acts)); err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(acts))
	for i := range acts {
		a := &acts[i]
		field := func(name string) string { return fmt.Sprintf("activities[%d].%s", i, name) }
		if a.Verb == "" {
			return nil, Invalid(field("verb"), "must not be empty")
		}
		if err := CheckText(field("verb"), a.Verb, maxVerbLen); err != nil {
			return nil, err
		}
		if a.Object == "" {
			return nil, Invalid(field("object"), "must not be empty")
		}
		if err := CheckText(field("object"), a.Object, maxObjectLen); err != nil {
			return nil, err
		}
		if a.Target != nil {
			if err := CheckText(field("target"), *a.Target, maxObjectLen); err != nil {
				return nil, err
			}
		}
		if a.ForeignID == "" {
			return nil, Invalid(field("foreignId"), "must not be empty: with time it makes the import idempotent")
		}
		if err := CheckText(field("foreignId"), a.ForeignID, maxForeignID); err != nil {
			return nil, err
		}
		a.Time = a.Time.UTC().Truncate(time.Microsecond)
		if a.Time.Before(time.Unix(0, 0)) {
			return nil, Invalid(field("time"), "must be after 1970-01-01T00:00:00Z")
		}
		if a.Time.After(now.Add(importClockSkew)) {
			return nil, Invalid(field("time"), "%s is in the future: imports bring in what already happened", a.Time.Format(time.RFC3339))
		}
		if err := CheckData(field("data"), a.Data); err != nil {
			return nil, err
		}
		ids[i] = idAt(a.Time)
	}
	return ids, nil
}

// idAt returns a new time-ordered id that sorts as if it had been made at t.
func idAt(t time.Time) uuid.UUID {
	id := NewID()
	floor := timeFloor(t)
	copy(id[0:6], floor[0:6])
	return id
}

// ImportActivities writes a checked batch of activities into origin, by
// actor, with the ids CheckImportedActivities returned: COPY into a
// temporary table of the transaction, then one statement that inserts the
// new activities (skipping any whose (origin, foreignId, time) exists),
// their origin entries and, when push is set, their copies in the
// timelines that follow origin within each follow's boundary, as a fan-out
// would. It runs in the transaction of the product, which holds origin's
// follower count (LockFollowerCount) so that push cannot go stale.
func (s *Store) ImportActivities(ctx context.Context, origin *Feed, actorID string, acts []ImportedActivityInput, ids []uuid.UUID, push bool) (ImportResult, error) {
	if len(acts) == 0 {
		return ImportResult{}, nil
	}
	if _, err := s.db.Exec(ctx, `CREATE TEMPORARY TABLE import_activities (
			id uuid NOT NULL, foreign_id text NOT NULL, time timestamptz NOT NULL,
			verb text NOT NULL, object text NOT NULL, target text, data jsonb) ON COMMIT DROP`); err != nil {
		return ImportResult{}, fmt.Errorf("store: import activities: %w", err)
	}
	_, err := s.db.CopyFrom(ctx, pgx.Identifier{"import_activities"},
		[]string{"id", "foreign_id", "time", "verb", "object", "target", "data"},
		pgx.CopyFromSlice(len(acts), func(i int) ([]any, error) {
			a := acts[i]
			var data any
			if a.Data != nil {
				data = string(a.Data)
			}
			return []any{ids[i], a.ForeignID, a.Time, a.Verb, a.Object, a.Target, data}, nil
		}))
	if err != nil {
		return ImportResult{}, fmt.Errorf("store: import activities: copy: %w", err)
	}
	if _, err := s.db.Exec(ctx, `ANALYZE import_activities`); err != nil {
		return ImportResult{}, fmt.Errorf("store: import activities: %w", err)
	}
	var inserted, entries int
	err = s.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO activities (id, feed_id, actor_id, verb, object, target, foreign_id, time, data, created_at, updated_at)
			SELECT id, $1, $2, verb, object, target, foreign_id, time, data, now(), now()
			FROM import_activities ORDER BY id
			ON CONFLICT (feed_id, foreign_id, time) WHERE foreign_id IS NOT NULL DO NOTHING
			RETURNING id),
		own AS (
			INSERT INTO feed_entries (feed_id, activity_id, origin) SELECT $1, id, $1 FROM ins),
		fan AS (
			INSERT INTO feed_entries (feed_id, activity_id, origin)
			SELECT f.source, ins.id, $1 FROM ins JOIN follows f ON f.target = $1 AND f.pull_from <= ins.id AND NOT f.pulled
			WHERE $3
			ON CONFLICT DO NOTHING
			RETURNING 1)
		SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM fan)`,
		origin.ID, actorID, push).Scan(&inserted, &entries)
	if err != nil {
		return ImportResult{}, fmt.Errorf("store: import activities: merge: %w", err)
	}
	return ImportResult{Inserted: inserted, Skipped: len(acts) - inserted, TimelineEntries: entries}, nil
}

// ImportFollows writes a checked batch of follows: COPY into a temporary
// table of the transaction, then one statement that inserts the new
// follows (skipping those that exist, and repeats), copies into each new
// follower the target's activities up to copyLimit (from the follow's
// boundary, as follow's backfill does), and moves the follow counts. It
// returns the targets the batch took above threshold followers, for the
// product to merge at read time from now on (PullFeeds). It runs in the
// transaction of the product.
func (s *Store) ImportFollows(ctx context.Context, edges []FollowEdgeInput, copyLimit, threshold int) (ImportResult, []string, error) {
	if len(edges) == 0 {
		return ImportResult{}, nil, nil
	}
	if _, err := s.db.Exec(ctx, `CREATE TEMPORARY TABLE import_follows (source text NOT NULL, target text NOT NULL) ON COMMIT DROP`); err != nil {
		return ImportResult{}, nil, fmt.Errorf("store: import follows: %w", err)
	}
	_, err := s.db.CopyFrom(ctx, pgx.Identifier{"import_follows"}, []string{"source", "target"},
		pgx.CopyFromSlice(len(edges), func(i int) ([]any, error) { return []any{edges[i].Source, edges[i].Target}, nil }))
	if err != nil {
		return ImportResult{}, nil, fmt.Errorf("store: import follows: copy: %w", err)
	}
	// A new table has no statistics: without them the planner guesses it
	// holds a few rows and picks nested loops that take seconds.
	if _, err := s.db.Exec(ctx, `ANALYZE import_follows`); err != nil {
		return ImportResult{}, nil, fmt.Errorf("store: import follows: %w", err)
	}
	// Every feed of the batch belongs to a user.
	var missing string
	err = s.db.QueryRow(ctx, `
		SELECT o.id FROM (SELECT DISTINCT split_part(source, ':', 2) AS id FROM import_follows
			UNION SELECT DISTINCT split_part(target, ':', 2) FROM import_follows) o
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.id) ORDER BY o.id LIMIT 1`).Scan(&missing)
	if err == nil {
		return ImportResult{}, nil, NotFound("user", missing)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return ImportResult{}, nil, fmt.Errorf("store: import follows: users: %w", err)
	}
	// pull_from: the copyLimit-th newest activity of the target, as
	// AddFollow sets it; with copyLimit 0, from now on.
	var inserted, entries int
	var crossed []string
	err = s.db.QueryRow(ctx, `
		WITH edges AS (SELECT DISTINCT source, target FROM import_follows),
		ins AS (
			INSERT INTO follows (source, target, pull_from)
			SELECT e.source, e.target, CASE WHEN $1::int = 0 THEN $2::uuid ELSE coalesce(
				(SELECT activity_id FROM feed_entries WHERE feed_id = e.target ORDER BY activity_id DESC OFFSET $1::int - 1 LIMIT 1),
				'00000000-0000-0000-0000-000000000000') END
			FROM edges e ORDER BY e.source, e.target
			ON CONFLICT (source, target) DO NOTHING
			RETURNING source, target, pull_from),
		copied AS (
			INSERT INTO feed_entries (feed_id, activity_id, origin)
			SELECT i.source, fe.activity_id, i.target FROM ins i
			JOIN feed_entries fe ON fe.feed_id = i.target AND fe.activity_id >= i.pull_from
			WHERE $1::int > 0
			ON CONFLICT DO NOTHING
			RETURNING 1),
		sc AS (SELECT source, count(*) AS n FROM ins GROUP BY source),
		src AS (
			INSERT INTO feeds (id, following_count) SELECT source, n FROM sc ORDER BY source
			ON CONFLICT (id) DO UPDATE SET following_count = feeds.following_count + excluded.following_count
			RETURNING 1),
		tc AS (SELECT target, count(*) AS n FROM ins GROUP BY target),
		tgt AS (
			INSERT INTO feeds (id, follower_count) SELECT target, n FROM tc ORDER BY target
			ON CONFLICT (id) DO UPDATE SET follower_count = feeds.follower_count + excluded.follower_count
			RETURNING id, follower_count)
		SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM copied), (SELECT count(*) FROM src),
			coalesce((SELECT array_agg(tgt.id ORDER BY tgt.id) FROM tgt JOIN tc ON tc.target = tgt.id
				WHERE tgt.follower_count > $3 AND tgt.follower_count - tc.n <= $3), '{}')`,
		copyLimit, NewID(), threshold).Scan(&inserted, &entries, new(int), &crossed)
	if err != nil {
		return ImportResult{}, nil, fmt.Errorf("store: import follows: merge: %w", err)
	}
	return ImportResult{Inserted: inserted, Skipped: len(edges) - inserted, TimelineEntries: entries}, crossed, nil
}

// MergeImportedIfPulled makes the follows this transaction imported merge
// their target at read time when the target is merged at read time
// already (MergeIfPulled, for a batch), and returns their sources. It runs
// after ImportFollows and PullFeeds, in their transaction: the follows it
// wrote are those whose created_at is the transaction's start.
func (s *Store) MergeImportedIfPulled(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		WITH pulled AS (
			SELECT DISTINCT i.source, i.target FROM import_follows i
			JOIN feeds fd ON fd.id = i.target AND fd.pulled_since IS NOT NULL)
		UPDATE follows f SET pulled = true FROM pulled p
		WHERE f.source = p.source AND f.target = p.target AND NOT f.pulled AND f.created_at = now()
		RETURNING f.source`)
	if err != nil {
		return nil, fmt.Errorf("store: import follows: merge pulled: %w", err)
	}
	sources, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: import follows: merge pulled: %w", err)
	}
	return sources, nil
}

// PullFeeds is PullFeed for several targets at once, set-based: their new
// activities stop being pushed and every follow of them is flagged; it
// returns the followers it flagged.
func (s *Store) PullFeeds(ctx context.Context, targets []string) ([]string, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE feeds SET pulled_since = coalesce(pulled_since, $2) WHERE id = ANY($1)`, targets, NewID()); err != nil {
		return nil, fmt.Errorf("store: pull feeds: %w", err)
	}
	rows, err := s.db.Query(ctx, `UPDATE follows SET pulled = true WHERE target = ANY($1) AND NOT pulled RETURNING source`, targets)
	if err != nil {
		return nil, fmt.Errorf("store: pull feeds: %w", err)
	}
	sources, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: pull feeds: %w", err)
	}
	return sources, nil
}
