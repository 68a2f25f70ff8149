package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxSearchQuery caps a searchActivities query, in characters.
const maxSearchQuery = 200

// ActivitySearchDoc is the text searchActivities matches: object, target
// and the string values of data. It is the expression of the
// activities_search index, written exactly as the index writes it.
const ActivitySearchDoc = `(to_tsvector('simple', object || ' ' || coalesce(target, ''))
	|| jsonb_to_tsvector('simple', coalesce(data, '{}'::jsonb), '["string"]'))`

// ActivitySearch is what searchActivities looks for: Query's words (web
// search syntax: "quoted phrases", or, -excluded) and optional filters.
type ActivitySearch struct {
	Query string
	// FeedID is the origin feed, ActorID the actor, Verb the verb.
	FeedID  *string
	Verb    *string
	ActorID *string
	// From and To bound the activity's time: From <= time < To.
	From *time.Time
	To   *time.Time
}

// CheckActivitySearch validates a search before it runs.
func CheckActivitySearch(q *ActivitySearch) error {
	if err := CheckText("query", q.Query, maxSearchQuery); err != nil {
		return err
	}
	q.Query = strings.TrimSpace(q.Query)
	if q.Query == "" {
		return Invalid("query", "must not be empty: give a word to search for")
	}
	if q.Verb != nil {
		if err := CheckText("verb", *q.Verb, maxVerbLen); err != nil {
			return err
		}
	}
	if q.ActorID != nil {
		if err := CheckUserID("actor", *q.ActorID); err != nil {
			return err
		}
	}
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		return Invalid("to", "must be after from")
	}
	return nil
}

// SearchActivities returns up to limit activities that match q, newest
// first (by id), with ids below before (uuid.Nil: from the newest).
func (s *Store) SearchActivities(ctx context.Context, q ActivitySearch, before uuid.UUID, limit int) ([]*Activity, error) {
	if before == uuid.Nil {
		before = maxID
	}
	rows, err := s.reader(ctx).Query(ctx, `SELECT `+activityColumns+` FROM activities
		WHERE `+ActivitySearchDoc+` @@ websearch_to_tsquery('simple', $1)
			AND ($2::text IS NULL OR feed_id = $2) AND ($3::text IS NULL OR verb = $3)
			AND ($4::text IS NULL OR actor_id = $4)
			AND ($5::timestamptz IS NULL OR time >= $5) AND ($6::timestamptz IS NULL OR time < $6)
			AND id < $7
		ORDER BY id DESC LIMIT $8`, q.Query, q.FeedID, q.Verb, q.ActorID, q.From, q.To, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: search activities: %w", err)
	}
	acts, err := pgx.CollectRows(rows, scanActivityRow)
	if err != nil {
		return nil, fmt.Errorf("store: search activities: %w", err)
	}
	return acts, nil
}
