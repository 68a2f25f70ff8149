package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Ranking is a named order for ranked feed pages: a formula scoring each
// activity. Version grows whenever the formula changes.
type Ranking struct {
	ID      string
	Formula string
	Version int64
	// BuiltIn marks a ranking Brook ships (it may have no row).
	BuiltIn bool
	// UpdatedAt is when an admin last set it (nil for a built-in one no
	// admin has replaced).
	UpdatedAt *time.Time
}

// maxRankingID caps a ranking id.
const maxRankingID = 64

// CheckRankingID checks a ranking id: 1 to 64 letters, digits, _ or -.
func CheckRankingID(field, id string) error {
	if id == "" || len(id) > maxRankingID {
		return Invalid(field, "a ranking id is 1 to %d characters", maxRankingID)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Invalid(field, "%q is not a valid ranking id: use letters, digits, _ and - only", truncate(id, 80))
		}
	}
	return nil
}

const rankingColumns = `id, formula, version, updated_at`

func scanRanking(row pgx.Row) (*Ranking, error) {
	var r Ranking
	if err := row.Scan(&r.ID, &r.Formula, &r.Version, &r.UpdatedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

// UpsertRanking sets a ranking's formula (checked by the caller). The
// version grows only when the formula changes, so setting the same one
// again keeps readers' cursors.
func (s *Store) UpsertRanking(ctx context.Context, id, formula string) (*Ranking, error) {
	r, err := scanRanking(s.db.QueryRow(ctx, `
		INSERT INTO rankings (id, formula) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET formula = excluded.formula,
			version = CASE WHEN rankings.formula = excluded.formula THEN rankings.version ELSE rankings.version + 1 END,
			updated_at = CASE WHEN rankings.formula = excluded.formula THEN rankings.updated_at ELSE now() END
		RETURNING `+rankingColumns, id, formula))
	if err != nil {
		return nil, fmt.Errorf("store: upsert ranking: %w", err)
	}
	return r, nil
}

// RankingByID returns a stored ranking, or nil when none has the id.
func (s *Store) RankingByID(ctx context.Context, id string) (*Ranking, error) {
	r, err := scanRanking(s.db.QueryRow(ctx, `SELECT `+rankingColumns+` FROM rankings WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: ranking: %w", err)
	}
	return r, nil
}

// Rankings returns the stored rankings by id.
func (s *Store) Rankings(ctx context.Context) ([]*Ranking, error) {
	rows, err := s.db.Query(ctx, `SELECT `+rankingColumns+` FROM rankings ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: rankings: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Ranking, error) { return scanRanking(row) })
	if err != nil {
		return nil, fmt.Errorf("store: rankings: %w", err)
	}
	return out, nil
}

// RankWindow is how many of a feed's newest activities a ranked page
// ranks: older ones are not in ranked lists.
const RankWindow = 1000

// RankSnapshot is what every page of one ranked list shares: the instant
// whose feed it ranks. Activities and reactions made after it are not
// counted, and ageHours is measured to it.
type RankSnapshot struct {
	At time.Time
}

// Below is the id bound of the snapshot: ids made at or before At (to the
// millisecond) sort below it.
func (s RankSnapshot) Below() uuid.UUID { return timeFloor(s.At.Add(time.Millisecond)) }

// RankPos is where a ranked page continues: after the activity ID that
// had Score (nil for the first page).
type RankPos struct {
	Score float64
	ID    uuid.UUID
}

// ScoredActivity is an activity of a ranked page with its score.
type ScoredActivity struct {
	Activity *Activity
	Score    float64
}

// rankedSQL reads a ranked page: the snapshot's newest RankWindow
// activities of the feed's sources (a k-way merge by id of one range scan
// per source, as feedActivitiesSQL), scored by the formula, after the
// cursor's (score, id), highest score first, ties newest first. It is one
// statement.
func rankedSQL(score string) string {
	return feedSources + `,
	cand AS (
		SELECT DISTINCT e.activity_id FROM src CROSS JOIN LATERAL (
			SELECT fe.activity_id FROM feed_entries fe
			WHERE fe.feed_id = src.feed AND fe.activity_id < $3 AND fe.activity_id >= src.since
			  AND EXISTS (SELECT 1 FROM activities x WHERE x.id = fe.activity_id)
			ORDER BY fe.activity_id DESC LIMIT $4
		) e ORDER BY e.activity_id DESC LIMIT $4),
	scored AS (
		SELECT a.*, ` + score + ` AS score FROM cand JOIN activities a ON a.id = cand.activity_id)
	SELECT ` + activityColumns + `, score FROM scored
	WHERE $5::bool OR (score, id) < ($6::float8, $7::uuid)
	ORDER BY score DESC, id DESC LIMIT $8`
}

// rankedArgs is the number of rankedSQL's own placeholders: a formula's
// are numbered after them.
const rankedArgs = 8

// CompileRanking compiles a ranking's formula for RankedActivities.
func CompileRanking(field, formula string) (*RankFormula, error) {
	return CompileFormula(field, formula, rankedArgs+1)
}

// RankedActivities returns a page of a feed ranked by a formula compiled
// with CompileRanking, in the snapshot snap, after pos (nil: the first
// page).
func (s *Store) RankedActivities(ctx context.Context, f *Feed, formula *RankFormula, snap RankSnapshot, pos *RankPos, first int) (Page[ScoredActivity], error) {
	below := snap.Below()
	args := []any{contentFeed(f), pullsFor(f), below, RankWindow, pos == nil, nil, nil, first + 1}
	if pos != nil {
		args[5], args[6] = pos.Score, pos.ID
	}
	args = append(args, formula.Args(snap.At, below)...)
	rows, err := s.db.Query(ctx, rankedSQL(formula.SQL()), args...)
	if err != nil {
		return Page[ScoredActivity]{}, fmt.Errorf("store: ranked activities: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ScoredActivity, error) {
		var a Activity
		var sa ScoredActivity
		err := row.Scan(a.dest(&sa.Score)...)
		sa.Activity = &a
		return sa, err
	})
	if err != nil {
		return Page[ScoredActivity]{}, fmt.Errorf("store: ranked activities: %w", err)
	}
	return PageOf(items, first), nil
}
