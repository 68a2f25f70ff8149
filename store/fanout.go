package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// FanoutJob is the payload of one bounded page of a fan-out: the followers
// of Origin with After < source <= Upto ("" Upto: no upper bound) get the
// activity. Pages of one activity run in parallel on any workers.
type FanoutJob struct {
	Activity uuid.UUID `json:"activity"`
	Origin   string    `json:"origin"`
	After    string    `json:"after"`
	Upto     string    `json:"upto"`
	// Skip lists the page's followers FanoutWatched wrote first: the page
	// leaves them out, so its plain INSERT does not collide with them.
	Skip []string `json:"skip,omitempty"`
	// Plan marks the job of a fan-out whose watched followers were
	// written first: it plans the pages (PlanFanout, a scan of every
	// follower that the first events need not wait for), writes the first
	// and queues the others, handing each its part of Skip.
	Plan bool `json:"plan,omitempty"`
}

// FanoutWatched writes the activity to those of feeds that follow its
// origin (with the boundary FanoutPage applies), ahead of the pages, and
// returns the feeds it wrote: the fan-out's watched timelines, which then
// get their rows and events without waiting for pages of thousands. It is
// idempotent (ON CONFLICT: a backfill or an earlier run may have written
// some) and, like a page, holds the activity's row until it commits.
func (s *Store) FanoutWatched(ctx context.Context, a ActivityJob, feeds []string) ([]string, error) {
	written, err := collectFeeds(s.db.Query(ctx, `
		INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT f.source, $1, $2 FROM follows f
		WHERE f.source = ANY($3) AND f.target = $2 AND f.pull_from <= $1
			AND EXISTS (SELECT 1 FROM activities WHERE id = $1 FOR SHARE)
		ON CONFLICT DO NOTHING RETURNING feed_id`, a.Activity, a.Origin, feeds))
	if err != nil {
		return nil, fmt.Errorf("store: fan out to watched feeds: %w", err)
	}
	return written, nil
}

// SkipWritten gives each page the feeds of written that fall within it, so
// that it leaves them out.
func SkipWritten(pages []FanoutJob, written []string) {
	for _, f := range written {
		for i := range pages {
			p := &pages[i]
			if f > p.After && (p.Upto == "" || f <= p.Upto) {
				p.Skip = append(p.Skip, f)
				break
			}
		}
	}
}

// PlanFanout splits the fan-out of an activity into pages of at most
// fanoutPageSize followers. It returns the pages in follower order; a
// follower that arrives later is covered by the page its id falls in, or
// by the follow's own backfill.
func (s *Store) PlanFanout(ctx context.Context, a ActivityJob) ([]FanoutJob, error) {
	rows, err := s.db.Query(ctx, `SELECT source FROM (
			SELECT source, row_number() OVER (ORDER BY source) AS n FROM follows WHERE target = $1
		) x WHERE n % $2 = 0 ORDER BY source`, a.Origin, fanoutPageSize)
	if err != nil {
		return nil, fmt.Errorf("store: plan fan-out: %w", err)
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: plan fan-out: %w", err)
	}
	pages := make([]FanoutJob, 0, len(bounds)+1)
	after := ""
	for _, b := range bounds {
		pages = append(pages, FanoutJob{Activity: a.Activity, Origin: a.Origin, After: after, Upto: b})
		after = b
	}
	return append(pages, FanoutJob{Activity: a.Activity, Origin: a.Origin, After: after}), nil
}

// FanoutPage writes one page of a fan-out with one set-based statement and
// returns the feeds that got the activity. It is idempotent: a page run
// again writes nothing twice, and a removed activity is written nowhere:
// the page holds the activity's row (FOR SHARE) until it commits, so a
// removal waits for it, and the removal's job, which comes after, finds
// the page's rows to delete.
// A follow made after the activity gets it only if it falls within the
// follow's backfill boundary, exactly as the read-time pull would show it.
//
// The page is first written with a plain INSERT, which is markedly faster
// than ON CONFLICT over thousands of rows; only if some row exists already
// (a backfill got there first, or the page ran before) is it rolled back
// and written again skipping the rows that exist.
func (s *Store) FanoutPage(ctx context.Context, j FanoutJob) ([]string, error) {
	const page = `
		INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT f.source, $1, $2 FROM follows f
		WHERE f.target = $2 AND f.source > $3 AND ($4 = '' OR f.source <= $4)
			AND f.pull_from <= $1
			AND f.source NOT IN (SELECT unnest($5::text[]))
			AND EXISTS (SELECT 1 FROM activities WHERE id = $1 FOR SHARE)`
	// NOT IN over a subquery: a hashed subplan, whatever the plan's
	// parameters, where <> ALL($5) would compare every row with every skip.
	skip := j.Skip
	if skip == nil {
		skip = []string{}
	}
	sp, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: fan out: %w", err)
	}
	feeds, err := collectFeeds(sp.Query(ctx, page+` RETURNING feed_id`, j.Activity, j.Origin, j.After, j.Upto, skip))
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return nil, fmt.Errorf("store: fan out: %w", err)
		}
		return feeds, nil
	}
	_ = sp.Rollback(ctx)
	if !isUniqueViolation(err) {
		return nil, fmt.Errorf("store: fan out: %w", err)
	}
	feeds, err = collectFeeds(s.db.Query(ctx, page+` ON CONFLICT DO NOTHING RETURNING feed_id`, j.Activity, j.Origin, j.After, j.Upto, skip))
	if err != nil {
		return nil, fmt.Errorf("store: fan out: %w", err)
	}
	return feeds, nil
}

func collectFeeds(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Backfill copies the target's activities from the follow's boundary into
// the source and returns them, newest first. It does nothing if the follow
// has ended meanwhile; it holds the follow's row until it commits, so an
// unfollow waits for it and the unfollow's cleanup finds what it copied.
func (s *Store) Backfill(ctx context.Context, j BackfillJob) ([]*Activity, error) {
	rows, err := s.db.Query(ctx, `
		WITH ins AS (
			INSERT INTO feed_entries (feed_id, activity_id, origin)
			SELECT $1, e.activity_id, $2 FROM feed_entries e
			WHERE e.feed_id = $2 AND e.activity_id >= $3
				AND EXISTS (SELECT 1 FROM follows WHERE source = $1 AND target = $2 FOR SHARE)
			ON CONFLICT DO NOTHING
			RETURNING activity_id)
		SELECT `+activityColumnsA+` FROM ins JOIN activities a ON a.id = ins.activity_id ORDER BY a.id DESC`,
		j.Source, j.Target, j.PullFrom)
	if err != nil {
		return nil, fmt.Errorf("store: backfill: %w", err)
	}
	acts, err := pgx.CollectRows(rows, scanActivityRow)
	if err != nil {
		return nil, fmt.Errorf("store: backfill: %w", err)
	}
	return acts, nil
}

// Unfollowed removes from the source what an ended follow brought into it
// and returns the removed activity ids. If source follows target again by
// the time this runs, it removes nothing.
func (s *Store) Unfollowed(ctx context.Context, j UnfollowJob) ([]uuid.UUID, error) {
	rows, err := s.db.Query(ctx, `
		DELETE FROM feed_entries WHERE feed_id = $1 AND origin = $2
			AND NOT EXISTS (SELECT 1 FROM follows WHERE source = $1 AND target = $2)
		RETURNING activity_id`, j.Source, j.Target)
	if err != nil {
		return nil, fmt.Errorf("store: unfollow cleanup: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: unfollow cleanup: %w", err)
	}
	if !j.Pulled {
		return ids, nil
	}
	// The timeline merged the target at read time: what it showed of it
	// (the newest, as far as a reader pages) leaves it too, unless the
	// follow is back.
	rows, err = s.db.Query(ctx, `
		SELECT activity_id FROM feed_entries WHERE feed_id = $2 AND activity_id >= $3
			AND NOT EXISTS (SELECT 1 FROM follows WHERE source = $1 AND target = $2)
		ORDER BY activity_id DESC LIMIT $4`, j.Source, j.Target, j.PullFrom, maxPulledRemovals)
	if err != nil {
		return nil, fmt.Errorf("store: unfollow cleanup: %w", err)
	}
	merged, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: unfollow cleanup: %w", err)
	}
	deleted := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		deleted[id] = true
	}
	for _, id := range merged {
		if !deleted[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// maxPulledRemovals bounds the removals announced when a timeline stops
// merging a feed: its newest activities, far more than a client pages.
const maxPulledRemovals = 1000

// removeBatch bounds how many rows one removal job deletes.
const removeBatch = 10_000

// RemoveEntries deletes up to removeBatch entries, reactions and comments
// of a removed activity and returns the feeds it was removed from; more reports
// whether rows remain for another run.
func (s *Store) RemoveEntries(ctx context.Context, j RemoveJob) (feeds []string, more bool, err error) {
	rows, err := s.db.Query(ctx, `
		DELETE FROM feed_entries WHERE activity_id = $1 AND feed_id IN (
			SELECT feed_id FROM feed_entries WHERE activity_id = $1 LIMIT $2)
		RETURNING feed_id`, j.Activity, removeBatch)
	if err != nil {
		return nil, false, fmt.Errorf("store: remove entries: %w", err)
	}
	feeds, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("store: remove entries: %w", err)
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM reactions WHERE activity_id = $1 AND id IN (
			SELECT id FROM reactions WHERE activity_id = $1 LIMIT $2)`, j.Activity, removeBatch)
	if err != nil {
		return nil, false, fmt.Errorf("store: remove reactions: %w", err)
	}
	comments, err := s.removeComments(ctx, j.Activity)
	if err != nil {
		return nil, false, err
	}
	return feeds, len(feeds) == removeBatch || tag.RowsAffected() == removeBatch || comments == removeBatch, nil
}

// demoteMargin is how much older than pulled_since a post that was not
// pushed can be (see Demote).
const demoteMargin = time.Minute

// DemotePage copies, for one page of followers, the activities the feed
// posted while it was pulled, and clears those follows' read-time merge in
// the same transaction. It returns the next page's job, or nil when done,
// when the feed is no longer pulled. The product checks first, holding the
// feed's row (LockFollowerCount), that the feed has not crossed the
// threshold again meanwhile: its follows were flagged again then.
func (s *Store) DemotePage(ctx context.Context, j DemoteJob) (next *DemoteJob, unflagged []string, err error) {
	// A post can make its id before it waits for the lock of the follow
	// that took its actor above the threshold, so be older than
	// pulled_since and still not pushed. Copying from a minute earlier
	// covers it; what was pushed before is already there (ON CONFLICT).
	since := timeFloor(idTime(j.Since).Add(-demoteMargin))
	var last *string
	err = s.db.QueryRow(ctx, `
		WITH page AS (
			SELECT source, pull_from FROM follows WHERE target = $1 AND source > $2 ORDER BY source LIMIT $4),
		ins AS (
			INSERT INTO feed_entries (feed_id, activity_id, origin)
			SELECT p.source, e.activity_id, $1 FROM page p
			JOIN feed_entries e ON e.feed_id = $1 AND e.activity_id >= greatest($3, p.pull_from)
			ON CONFLICT DO NOTHING),
		unflag AS (
			UPDATE follows SET pulled = false WHERE target = $1 AND source IN (SELECT source FROM page) AND pulled
			RETURNING source)
		SELECT (SELECT max(source) FROM page), (SELECT coalesce(array_agg(source), '{}') FROM unflag)`,
		j.Feed, j.After, since, fanoutPageSize).Scan(&last, &unflagged)
	if err != nil {
		return nil, nil, fmt.Errorf("store: demote feed: %w", err)
	}
	if last != nil {
		next := j
		next.After = *last
		return &next, unflagged, nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE feeds SET pulled_since = NULL WHERE id = $1`, j.Feed); err != nil {
		return nil, nil, fmt.Errorf("store: demote feed: %w", err)
	}
	return nil, unflagged, nil
}
