package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PageWith says what a page of activities reads with each activity, for
// the selections most pages make, so a page costs one statement rather than
// one more per selection (issue 22).
type PageWith struct {
	// Actors reads each activity's actor.
	Actors bool
	// Counts reads each activity's reaction counts by kind.
	Counts bool
	// Viewer, unless empty, reads that user's own reactions to each.
	Viewer string
}

// ActivityExtras is what a page read with one activity, as the batched
// lookups (UsersByID, ReactionCounts, OwnReactions) would answer it.
type ActivityExtras struct {
	// Actor is nil when its user does not exist (or Actors was not asked).
	Actor *User
	// Counts are the nonzero counts by kind, ordered by kind: empty, not
	// nil, when there are none (nil when Counts was not asked).
	Counts []ReactionCount
	// Own are the viewer's reactions, oldest first: empty, not nil, when
	// there are none (nil when no viewer was asked).
	Own []*Reaction
}

// extrasJoins reads a PageWith's values for each row of a CTE "page" with
// columns id and actor_id; $E1, $E2 and $E3 stand for its Actors, Counts and
// Viewer parameters. Each part is skipped in SQL when not asked: a false
// join condition costs no lookup.
const extrasJoins = `
	LEFT JOIN users u ON $E1 AND u.id = p.actor_id
	LEFT JOIN LATERAL (SELECT array_agg(rc.kind ORDER BY rc.kind) AS kinds, array_agg(rc.count ORDER BY rc.kind) AS counts
		FROM reaction_counts rc WHERE $E2 AND rc.activity_id = p.id AND rc.count > 0) rc ON true
	LEFT JOIN LATERAL (SELECT array_agg(r.id ORDER BY r.id) AS ids, array_agg(r.kind ORDER BY r.id) AS kinds,
			array_agg(r.data ORDER BY r.id) AS data, array_agg(r.created_at ORDER BY r.id) AS created
		FROM reactions r WHERE $E3 <> '' AND r.activity_id = p.id AND r.user_id = $E3) own ON true`

// extrasColumns are the columns extrasJoins adds, scanned by extrasRow.
const extrasColumns = `u.id, u.name, u.image, u.data, u.role, u.last_active, u.created_at, u.updated_at,
	rc.kinds, rc.counts, own.ids, own.kinds, own.data, own.created`

// withExtras returns sql with extrasJoins' parameters numbered from n.
func withExtras(sql string, n int) string {
	return strings.NewReplacer("$E1", fmt.Sprintf("$%d", n), "$E2", fmt.Sprintf("$%d", n+1), "$E3", fmt.Sprintf("$%d", n+2)).Replace(sql)
}

// feedPageSQL is feedActivitiesSQL with the page's extras in the same
// statement.
var feedPageSQL = withExtras(feedSources+feedMergeSQL+`
	SELECT `+strings.ReplaceAll(activityColumnsA, "a.", "p.")+`, `+extrasColumns+`
	FROM page p`+extrasJoins+`
	ORDER BY p.id DESC`, 5)

// activityExtrasSQL reads the extras of activities read some other way
// (a ranked page): one statement for what would be three.
var activityExtrasSQL = withExtras(`
	WITH page AS (SELECT * FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS p(id, actor_id, n))
	SELECT `+extrasColumns+` FROM page p`+extrasJoins+`
	ORDER BY p.n`, 3)

// extrasRow scans extrasColumns.
type extrasRow struct {
	user             User
	userID           *string
	role             *string
	created, updated *time.Time
	kinds            []string
	counts           []int64
	ownIDs           []uuid.UUID
	ownKinds         []string
	ownData          []json.RawMessage
	ownCreated       []time.Time
}

func (e *extrasRow) dest() []any {
	return []any{&e.userID, &e.user.Name, &e.user.Image, &e.user.Data, &e.role, &e.user.LastActive, &e.created, &e.updated,
		&e.kinds, &e.counts, &e.ownIDs, &e.ownKinds, &e.ownData, &e.ownCreated}
}

// extras returns what the row read for the activity id, as asked by with.
func (e *extrasRow) extras(id uuid.UUID, with PageWith) ActivityExtras {
	var x ActivityExtras
	if with.Actors && e.userID != nil {
		u := e.user
		u.ID, u.Role, u.CreatedAt, u.UpdatedAt = *e.userID, *e.role, *e.created, *e.updated
		x.Actor = &u
	}
	if with.Counts {
		x.Counts = make([]ReactionCount, len(e.kinds))
		for i := range e.kinds {
			x.Counts[i] = ReactionCount{Kind: e.kinds[i], Count: int(e.counts[i])}
		}
	}
	if with.Viewer != "" {
		x.Own = make([]*Reaction, len(e.ownIDs))
		for i := range e.ownIDs {
			x.Own[i] = &Reaction{ID: e.ownIDs[i], ActivityID: id, UserID: with.Viewer, Kind: e.ownKinds[i], Data: e.ownData[i], CreatedAt: e.ownCreated[i]}
		}
	}
	return x
}

// FeedActivitiesWith is FeedActivities that also reads, in the same
// statement, what with asks of each activity; extras[i] is Items[i]'s.
func (s *Store) FeedActivitiesWith(ctx context.Context, f *Feed, after uuid.UUID, first int, with PageWith) (Page[*Activity], []ActivityExtras, error) {
	rows, err := s.reader(ctx).Query(ctx, feedPageSQL, feedPageArgs(f, after, first, with)...)
	return collectFeedPage(rows, err, first, with)
}

// feedPageArgs are feedPageSQL's arguments.
func feedPageArgs(f *Feed, after uuid.UUID, first int, with PageWith) []any {
	if after == uuid.Nil {
		after = maxID
	}
	return []any{contentFeed(f), pullsFor(f), after, first + 1, with.Actors, with.Counts, with.Viewer}
}

// collectFeedPage reads the rows of feedPageSQL (err is the query's).
func collectFeedPage(rows pgx.Rows, err error, first int, with PageWith) (Page[*Activity], []ActivityExtras, error) {
	if err != nil {
		return Page[*Activity]{}, nil, fmt.Errorf("store: feed page: %w", err)
	}
	defer rows.Close()
	var acts []*Activity
	var extras []ActivityExtras
	for rows.Next() {
		var a Activity
		var e extrasRow
		if err := rows.Scan(a.dest(e.dest()...)...); err != nil {
			return Page[*Activity]{}, nil, fmt.Errorf("store: feed page: %w", err)
		}
		acts = append(acts, &a)
		extras = append(extras, e.extras(a.ID, with))
	}
	if err := rows.Err(); err != nil {
		return Page[*Activity]{}, nil, fmt.Errorf("store: feed page: %w", err)
	}
	page := PageOf(acts, first)
	return page, extras[:len(page.Items)], nil
}

// FeedWithActivities reads f as FeedsByID does and a page of its
// activities as FeedActivitiesWith does, in one round trip: feed(id) {
// activities }, the hottest feed read, waits on PostgreSQL once instead of
// twice. feed is nil when FeedsByID's would be. The page is read before
// the caller checks its read rules on feed: use it only once they pass.
// Not ok, with nothing read, when ctx lets the page go to a replica: it
// then goes the usual way.
func (s *Store) FeedWithActivities(ctx context.Context, f *Feed, after uuid.UUID, first int, with PageWith) (feed *Feed, page Page[*Activity], extras []ActivityExtras, ok bool, err error) {
	if !s.readsPrimary(ctx) {
		return nil, Page[*Activity]{}, nil, false, nil
	}
	b := &pgx.Batch{}
	ids := []string{f.ID}
	b.Queue(feedByIDSQL, f.ID)
	b.Queue(feedPageSQL, feedPageArgs(f, after, first, with)...)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	feeds, err := collectFeedsByID(rows, err, ids)
	if err != nil {
		return nil, Page[*Activity]{}, nil, true, err
	}
	rows, err = br.Query()
	page, extras, err = collectFeedPage(rows, err, first, with)
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return nil, Page[*Activity]{}, nil, true, err
	}
	return feeds[0], page, extras, true, nil
}

// ActivityExtras reads what with asks of activities read some other way,
// in one statement; out[i] is acts[i]'s.
func (s *Store) ActivityExtras(ctx context.Context, acts []*Activity, with PageWith) ([]ActivityExtras, error) {
	ids := make([]uuid.UUID, len(acts))
	actors := make([]string, len(acts))
	for i, a := range acts {
		ids[i], actors[i] = a.ID, a.ActorID
	}
	rows, err := s.db.Query(ctx, activityExtrasSQL, ids, actors, with.Actors, with.Counts, with.Viewer)
	if err != nil {
		return nil, fmt.Errorf("store: activity extras: %w", err)
	}
	defer rows.Close()
	// One row per activity, in the order asked: each join adds at most one.
	out := make([]ActivityExtras, 0, len(acts))
	for rows.Next() {
		var e extrasRow
		if err := rows.Scan(e.dest()...); err != nil {
			return nil, fmt.Errorf("store: activity extras: %w", err)
		}
		out = append(out, e.extras(ids[len(out)], with))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: activity extras: %w", err)
	}
	if len(out) != len(acts) {
		return nil, fmt.Errorf("store: activity extras: %d rows for %d activities", len(out), len(acts))
	}
	return out, nil
}
