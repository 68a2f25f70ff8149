package feeds

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Ranked feeds. A ranking is a named formula that scores activities
// (store/rankformula.go says what a formula may use); a ranked page lists a
// feed's newest store.RankWindow activities by score, highest first, ties
// newest first. Every page of one list ranks one snapshot, fixed by its
// first page and carried in the cursors: activities posted and reactions
// added after it are not counted, and ageHours is measured to it, so
// scores do not move between pages and paging neither repeats nor skips an
// activity because others were liked meanwhile. What can still move an
// activity is what the snapshot cannot see: a reaction removed or data
// changed since; an activity that drops below the cursor that way shows a
// second time, one that rises above it is skipped. A cursor made under one
// formula is refused once an admin changes the ranking.

// BuiltInRankings are the rankings Brook ships, by id. An admin may
// replace one's formula with upsertRanking.
var BuiltInRankings = map[string]string{
	// Likes (and comments, twice over) count; the score halves every day
	// of age, so the order of two activities never changes with time alone.
	"popular": "(1 + reactionCounts.like + 2 * commentCount) * decay(ageHours, 24)",
}

// RankedActivity is an activity of a ranked page, with its score and the
// position a page after it starts from.
type RankedActivity struct {
	Activity *store.Activity
	Score    float64
	// Position is the list position of the activity, for its cursor.
	Position string
}

// UpsertRanking creates or replaces a ranking (admins only). The formula
// is checked before anything is written: a syntax error is BAD_USER_INPUT
// with its position.
func (s *Service) UpsertRanking(ctx context.Context, id, formula string) (*store.Ranking, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if !me.IsAdmin() {
		return nil, auth.Forbidden("only admins set rankings")
	}
	if err := store.CheckRankingID("id", id); err != nil {
		return nil, err
	}
	if _, err := store.CompileRanking("formula", formula); err != nil {
		return nil, err
	}
	r, err := s.store.UpsertRanking(ctx, id, formula)
	if err != nil {
		return nil, err
	}
	_, r.BuiltIn = BuiltInRankings[id]
	return r, nil
}

// Rankings lists the rankings by id: the stored ones and the built-in
// ones no admin has replaced.
func (s *Service) Rankings(ctx context.Context) ([]*store.Ranking, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return nil, err
	}
	stored, err := s.store.Rankings(ctx)
	if err != nil {
		return nil, err
	}
	for id, formula := range BuiltInRankings {
		i := slices.IndexFunc(stored, func(r *store.Ranking) bool { return r.ID == id })
		if i >= 0 {
			stored[i].BuiltIn = true
			continue
		}
		stored = append(stored, &store.Ranking{ID: id, Formula: formula, BuiltIn: true})
	}
	slices.SortFunc(stored, func(a, b *store.Ranking) int { return strings.Compare(a.ID, b.ID) })
	return stored, nil
}

// ranking reads a ranking by id: a stored one, else a built-in one (with
// version 0); an unknown id is BAD_USER_INPUT.
func (s *Service) ranking(ctx context.Context, id string) (*store.Ranking, error) {
	if err := store.CheckRankingID("ranking", id); err != nil {
		return nil, err
	}
	r, err := s.store.RankingByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if r != nil {
		_, r.BuiltIn = BuiltInRankings[id]
		return r, nil
	}
	if formula, ok := BuiltInRankings[id]; ok {
		return &store.Ranking{ID: id, Formula: formula, BuiltIn: true}, nil
	}
	known := make([]string, 0, len(BuiltInRankings))
	for k := range BuiltInRankings {
		known = append(known, k)
	}
	slices.Sort(known)
	return nil, store.Invalid("ranking", "unknown ranking %q: use %s or one an admin set with upsertRanking (query rankings lists them)",
		id, strings.Join(known, ", "))
}

// RankedActivities returns a page of a feed's activities ranked by the
// ranking named id (see the package's ranked feeds comment): one
// statement reads the ranking, one the page.
func (s *Service) RankedActivities(ctx context.Context, f *store.Feed, id string, first *int, after *string) (store.Page[RankedActivity], error) {
	if err := s.RequireRead(ctx, f); err != nil {
		return store.Page[RankedActivity]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[RankedActivity]{}, err
	}
	r, err := s.ranking(ctx, id)
	if err != nil {
		return store.Page[RankedActivity]{}, err
	}
	formula, err := store.CompileRanking("ranking", r.Formula)
	if err != nil {
		return store.Page[RankedActivity]{}, fmt.Errorf("feeds: ranking %s: stored formula: %w", r.ID, err)
	}
	snap := store.RankSnapshot{At: time.Now().UTC().Truncate(time.Millisecond)}
	var at *store.RankPos
	if pos != "" {
		c, err := parseRankCursor(pos, r)
		if err != nil {
			return store.Page[RankedActivity]{}, err
		}
		snap, at = c.snap, &c.pos
	}
	page, err := s.store.RankedActivities(ctx, f, formula, snap, at, n)
	if err != nil {
		return store.Page[RankedActivity]{}, err
	}
	out := store.Page[RankedActivity]{HasNext: page.HasNext, Items: make([]RankedActivity, len(page.Items))}
	for i, it := range page.Items {
		out.Items[i] = RankedActivity{Activity: it.Activity, Score: it.Score,
			Position: rankCursor{ranking: r.ID, version: r.Version, snap: snap, pos: store.RankPos{Score: it.Score, ID: it.Activity.ID}}.String()}
	}
	return out, nil
}

// rankCursor is the position of a ranked list:
// "rank:<ranking>:<version>:<snapshot ms>:<score>:<activity id>". The
// score is written exactly (shortest round-trip form).
type rankCursor struct {
	ranking string
	version int64
	snap    store.RankSnapshot
	pos     store.RankPos
}

func (c rankCursor) String() string {
	return fmt.Sprintf("rank:%s:%d:%d:%s:%s", c.ranking, c.version, c.snap.At.UnixMilli(),
		strconv.FormatFloat(c.pos.Score, 'g', -1, 64), c.pos.ID)
}

// parseRankCursor reads a ranked list's position, which must have been
// made by ranking r as it is now.
func parseRankCursor(pos string, r *store.Ranking) (rankCursor, error) {
	bad := store.Invalid("after", "is not a cursor of this ranked list; pass an endCursor from a previous page of activities(ranking: %q)", r.ID)
	parts := strings.Split(pos, ":")
	if len(parts) != 6 || parts[0] != "rank" {
		return rankCursor{}, bad
	}
	version, err1 := strconv.ParseInt(parts[2], 10, 64)
	ms, err2 := strconv.ParseInt(parts[3], 10, 64)
	score, err3 := strconv.ParseFloat(parts[4], 64)
	id, err4 := uuid.Parse(parts[5])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || math.IsNaN(score) || math.IsInf(score, 0) {
		return rankCursor{}, bad
	}
	if parts[1] != r.ID {
		return rankCursor{}, bad
	}
	if version != r.Version {
		return rankCursor{}, store.Invalid("after", "ranking %q changed since this list's first page: read it again from the first page", r.ID)
	}
	return rankCursor{ranking: r.ID, version: version, snap: store.RankSnapshot{At: time.UnixMilli(ms).UTC()}, pos: store.RankPos{Score: score, ID: id}}, nil
}
