package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Activity is something an actor did, posted to one origin feed and copied
// into the feeds that follow it and the feeds named in To.
type Activity struct {
	ID        uuid.UUID
	FeedID    string
	ActorID   string
	Verb      string
	Object    string
	Target    *string
	ForeignID *string
	Time      time.Time
	Data      json.RawMessage
	To        []string
	CreatedAt time.Time
	UpdatedAt time.Time
	// CommentCount counts its comments and replies.
	CommentCount int
	// Attachments: files, external links and link previews.
	Attachments []Attachment
}

// ActivityInput is a new activity.
type ActivityInput struct {
	Verb      string
	Object    string
	Target    *string
	ForeignID *string
	// Time is when it happened; nil means now. With ForeignID it makes the
	// post idempotent: the same (feed, ForeignID, Time) is one activity.
	Time *time.Time
	Data json.RawMessage
	// To are more feeds that get a copy, like "notification:bob".
	To []string
	// Attachments are the client's; Stored is what the product made of
	// them (checked, uploads resolved), the column's value.
	Attachments []AttachmentInput
	Stored      []Attachment
}

// Limits on activities.
const (
	maxVerbLen     = 64
	maxObjectLen   = 1000
	maxForeignID   = 200
	maxActivityTo  = 20
	maxCopyLimit   = 1000
	fanoutPageSize = 10_000
)

// Job kinds of the feeds product.
const (
	JobFeedActivity = "feed.activity"
	JobFeedFanout   = "feed.fanout"
	JobFeedBackfill = "feed.backfill"
	JobFeedUnfollow = "feed.unfollow"
	JobFeedRemove   = "feed.remove"
	JobFeedDemote   = "feed.demote"
)

const activityColumns = `id, feed_id, actor_id, verb, object, target, foreign_id, time, data, to_feeds, created_at, updated_at, comment_count, attachments`
const activityColumnsA = `a.id, a.feed_id, a.actor_id, a.verb, a.object, a.target, a.foreign_id, a.time, a.data, a.to_feeds, a.created_at, a.updated_at, a.comment_count, a.attachments`

// dest lists where activityColumns scan to, so that a statement reading
// more columns after them scans them in one place.
func (a *Activity) dest(more ...any) []any {
	return append([]any{&a.ID, &a.FeedID, &a.ActorID, &a.Verb, &a.Object, &a.Target, &a.ForeignID, &a.Time, &a.Data, &a.To, &a.CreatedAt, &a.UpdatedAt, &a.CommentCount, &a.Attachments}, more...)
}

func scanActivity(row pgx.Row) (*Activity, error) {
	var a Activity
	err := row.Scan(a.dest()...)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func scanActivityRow(row pgx.CollectableRow) (*Activity, error) { return scanActivity(row) }

// CheckActivityInput validates a new activity before anything is written,
// normalizes its To list, and returns the activity's id. The id is made
// now, before the post waits for any lock (see DemotePage).
func CheckActivityInput(origin *Feed, in *ActivityInput) (uuid.UUID, error) {
	if in.Verb == "" {
		return uuid.Nil, Invalid("input.verb", "must not be empty")
	}
	if err := CheckText("input.verb", in.Verb, maxVerbLen); err != nil {
		return uuid.Nil, err
	}
	if in.Object == "" {
		return uuid.Nil, Invalid("input.object", "must not be empty")
	}
	if err := CheckText("input.object", in.Object, maxObjectLen); err != nil {
		return uuid.Nil, err
	}
	if in.Target != nil {
		if err := CheckText("input.target", *in.Target, maxObjectLen); err != nil {
			return uuid.Nil, err
		}
	}
	if in.ForeignID != nil {
		if *in.ForeignID == "" {
			return uuid.Nil, Invalid("input.foreignId", "must not be empty; leave it out instead")
		}
		if err := CheckText("input.foreignId", *in.ForeignID, maxForeignID); err != nil {
			return uuid.Nil, err
		}
	}
	if err := CheckData("input.data", in.Data); err != nil {
		return uuid.Nil, err
	}
	if len(in.To) > maxActivityTo {
		return uuid.Nil, Invalid("input.to", "at most %d feeds", maxActivityTo)
	}
	to := make([]string, 0, len(in.To))
	for i, id := range in.To {
		field := fmt.Sprintf("input.to[%d]", i)
		f, err := ParseFeedID(field, id)
		if err != nil {
			return uuid.Nil, err
		}
		if f.Group == GroupTimelineAggregated {
			return uuid.Nil, Invalid(field, "%s shows the activities of timeline:%s; copy to that feed instead", id, f.OwnerID)
		}
		if id != origin.ID && !slices.Contains(to, id) {
			to = append(to, id)
		}
	}
	in.To = to
	return NewID(), nil
}

// LockFollowerCount reads a feed's follower count and holds its row (FOR
// SHARE) until the transaction ends: follows that move the feed across the
// pull threshold update that row, so they and this transaction take turns.
// A feed no one has followed has no row: 0.
func (s *Store) LockFollowerCount(ctx context.Context, feedID string) (int, error) {
	var followers int
	err := s.db.QueryRow(ctx, `SELECT follower_count FROM feeds WHERE id = $1 FOR SHARE`, feedID).Scan(&followers)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("store: follower count: %w", err)
	}
	return followers, nil
}

// AddActivity writes an activity by actor to origin, with the id and input
// CheckActivityInput returned, and its entries in the origin and To feeds.
// Posting the same (origin, ForeignID, Time) again returns the existing
// activity and writes nothing (written false). It runs in the transaction
// of the product, which writes the job that follows the activity with it.
func (s *Store) AddActivity(ctx context.Context, id uuid.UUID, origin *Feed, actorID string, in ActivityInput) (a *Activity, written bool, err error) {
	created := idTime(id)
	at := created
	if in.Time != nil {
		at = in.Time.UTC().Truncate(time.Microsecond)
	}
	stored := in.Stored
	target := "activity:" + id.String()
	if HasUploads(stored) {
		// Only with uploads: the common post costs no statement more.
		stored = slices.Clone(stored)
		if err := s.attachUploads(ctx, actorID, target, "input.attachments", stored); err != nil {
			return nil, false, err
		}
	}
	a, err = scanActivity(s.db.QueryRow(ctx, `
		INSERT INTO activities (id, feed_id, actor_id, verb, object, target, foreign_id, time, data, to_feeds, created_at, updated_at, attachments)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
		ON CONFLICT (feed_id, foreign_id, time) WHERE foreign_id IS NOT NULL DO NOTHING
		RETURNING `+activityColumns,
		id, origin.ID, actorID, in.Verb, in.Object, in.Target, in.ForeignID, at, in.Data, in.To, created, attachmentsValue(stored)))
	if errors.Is(err, pgx.ErrNoRows) {
		// Posted before: return the first copy and write nothing (the
		// uploads just attached are free again).
		if HasUploads(in.Stored) {
			if _, err := s.db.Exec(ctx, `UPDATE uploads SET attached_at = NULL, attached_to = NULL WHERE attached_to = $1`, target); err != nil {
				return nil, false, err
			}
		}
		a, err = scanActivity(s.db.QueryRow(ctx, `SELECT `+activityColumns+` FROM activities
			WHERE feed_id = $1 AND foreign_id = $2 AND time = $3`, origin.ID, in.ForeignID, at))
		return a, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if len(in.To) > 0 {
		// Every feed copied to exists: it belongs to a user.
		missing, err := s.missingFeedOwners(ctx, in.To)
		if err != nil {
			return nil, false, err
		}
		if missing != "" {
			return nil, false, NotFound("feed", missing)
		}
	}
	feeds := append([]string{origin.ID}, in.To...)
	if _, err := s.db.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT f, $2, $3 FROM unnest($1::text[]) AS f ON CONFLICT DO NOTHING`, feeds, a.ID, origin.ID); err != nil {
		return nil, false, err
	}
	return a, true, nil
}

// missingFeedOwners returns the first of feeds whose owner is no user, or
// "" when every feed has one.
func (s *Store) missingFeedOwners(ctx context.Context, feeds []string) (string, error) {
	var missing *string
	err := s.db.QueryRow(ctx, `
		SELECT f FROM unnest($1::text[]) WITH ORDINALITY AS t(f, n)
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = split_part(t.f, ':', 2))
		ORDER BY n LIMIT 1`, feeds).Scan(&missing)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil || missing == nil {
		return "", err
	}
	return *missing, nil
}

// ActivityJob is the payload of the job that follows a new activity: it
// announces the activity and, when Push is set, fans it out to followers.
type ActivityJob struct {
	Activity uuid.UUID `json:"activity"`
	Origin   string    `json:"origin"`
	Push     bool      `json:"push"`
	// Followers is the origin's follower count when the post was made
	// (0 in jobs of older nodes): a large fan-out writes its watched
	// followers first.
	Followers int `json:"followers,omitempty"`
}

// ActivitiesByID returns activities in the order of ids (nil where none).
func (s *Store) ActivitiesByID(ctx context.Context, ids []uuid.UUID) ([]*Activity, error) {
	rows, err := s.db.Query(ctx, `SELECT `+activityColumns+` FROM activities WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: activities by id: %w", err)
	}
	acts, err := pgx.CollectRows(rows, scanActivityRow)
	if err != nil {
		return nil, fmt.Errorf("store: activities by id: %w", err)
	}
	return inOrder(ids, acts, func(a *Activity) uuid.UUID { return a.ID }), nil
}

// Activity returns one activity.
func (s *Store) Activity(ctx context.Context, id uuid.UUID) (*Activity, error) {
	a, err := scanActivity(s.db.QueryRow(ctx, `SELECT `+activityColumns+` FROM activities WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("activity", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: activity: %w", err)
	}
	return a, nil
}

// UpdateActivity replaces an activity's custom data.
func (s *Store) UpdateActivity(ctx context.Context, id uuid.UUID, data json.RawMessage) (*Activity, error) {
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	a, err := scanActivity(s.db.QueryRow(ctx, `UPDATE activities SET data = $2, updated_at = now()
		WHERE id = $1 RETURNING `+activityColumns, id, data))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("activity", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: update activity: %w", err)
	}
	return a, nil
}

// RemoveActivity deletes an activity. It is gone from every read at once;
// the job written with it removes its entries from every feed it reached
// and announces the removal.
func (s *Store) RemoveActivity(ctx context.Context, id uuid.UUID) error {
	err := s.InTx(ctx, func(tx *Store) error {
		tag, err := tx.db.Exec(ctx, `DELETE FROM activities WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return NotFound("activity", id.String())
		}
		if _, err := tx.db.Exec(ctx, `DELETE FROM reaction_counts WHERE activity_id = $1`, id); err != nil {
			return err
		}
		if err := tx.releaseUploads(ctx, "activity:"+id.String()); err != nil {
			return err
		}
		_, err = tx.EnqueueJob(ctx, JobFeedRemove, RemoveJob{Activity: id})
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: remove activity: %w", err)
	}
	return err
}

// RemoveJob is the payload of the job that removes an activity's entries
// and reactions, a bounded batch at a time.
type RemoveJob struct {
	Activity uuid.UUID `json:"activity"`
}
