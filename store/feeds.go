package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// FeedKind says how a feed presents its activities.
type FeedKind string

// Feed kinds.
const (
	FeedFlat         FeedKind = "FLAT"
	FeedAggregated   FeedKind = "AGGREGATED"
	FeedNotification FeedKind = "NOTIFICATION"
)

// Feed groups. Every user has one feed of each; the group decides the kind.
const (
	GroupUser               = "user"
	GroupTimeline           = "timeline"
	GroupTimelineAggregated = "timeline_aggregated"
	GroupNotification       = "notification"
)

var feedKinds = map[string]FeedKind{
	GroupUser:               FeedFlat,
	GroupTimeline:           FeedFlat,
	GroupTimelineAggregated: FeedAggregated,
	GroupNotification:       FeedNotification,
}

// Feed is a feed, "group:owner", with its follow counts.
type Feed struct {
	ID             string
	Group          string
	OwnerID        string
	Kind           FeedKind
	FollowerCount  int
	FollowingCount int
	// Visibility says who reads the feed: "" until read from the database
	// for a user feed (FeedsByID reads it); PRIVATE for the other groups.
	Visibility FeedVisibility
}

// ParseFeedID checks a feed id, "group:owner", and returns the feed without
// counts. Only the four default groups exist.
func ParseFeedID(field, id string) (*Feed, error) {
	group, owner, ok := strings.Cut(id, ":")
	if !ok {
		return nil, Invalid(field, "%q is not a feed id: feed ids are \"group:user\", like \"user:alice\"", truncate(id, 80))
	}
	kind, ok := feedKinds[group]
	if !ok {
		return nil, Invalid(field, "%q has no feed group %q: the groups are user, timeline, timeline_aggregated and notification", truncate(id, 80), truncate(group, 40))
	}
	if err := CheckUserID(field, owner); err != nil {
		return nil, err
	}
	f := &Feed{ID: id, Group: group, OwnerID: owner, Kind: kind}
	if group != GroupUser {
		f.Visibility = VisibilityPrivate
	}
	return f, nil
}

// contentFeed is the feed whose entries a feed shows: timeline_aggregated
// has the same follows as timeline, so it groups the timeline's entries.
func contentFeed(f *Feed) string {
	if f.Group == GroupTimelineAggregated {
		return GroupTimeline + ":" + f.OwnerID
	}
	return f.ID
}

// pullsFor says whose follows a feed merges at read time: timelines merge
// the large actors they follow; other feeds merge nothing.
func pullsFor(f *Feed) string {
	if f.Group == GroupTimeline || f.Group == GroupTimelineAggregated {
		return GroupTimeline + ":" + f.OwnerID
	}
	return ""
}

// feedsByIDSQL reads the follow counts and visibility of the feeds $1
// whose owner exists. A timeline_aggregated feed has its timeline's
// follows, so its counts.
const feedsByIDSQL = `
	SELECT ids.id, coalesce(f.follower_count, 0), coalesce(f.following_count, 0), coalesce(f.visibility, 'PUBLIC')
	FROM unnest($1::text[]) AS ids(id)
	JOIN users u ON u.id = split_part(ids.id, ':', 2)
	LEFT JOIN feeds f ON f.id = CASE WHEN split_part(ids.id, ':', 1) = 'timeline_aggregated'
		THEN 'timeline:' || split_part(ids.id, ':', 2) ELSE ids.id END`

// feedByIDSQL is feedsByIDSQL for one feed, $1. A statement of its own:
// PostgreSQL's generic plan of the array's (ten rows estimated, a hash join
// over all of feeds) costs more than the custom plan of a one-element
// array, so it planned that statement anew at every execution, about
// 0.25 ms of its CPU per timeline page against 0.04 ms executing it
// (pg_stat_statements); with a scalar the generic plan is the custom one,
// two key lookups, and is planned once per connection.
const feedByIDSQL = `
	SELECT $1::text, coalesce(f.follower_count, 0), coalesce(f.following_count, 0), coalesce(f.visibility, 'PUBLIC')
	FROM users u
	LEFT JOIN feeds f ON f.id = CASE WHEN split_part($1, ':', 1) = 'timeline_aggregated'
		THEN 'timeline:' || split_part($1, ':', 2) ELSE $1 END
	WHERE u.id = split_part($1, ':', 2)`

// FeedsByID returns feeds with their follow counts, in the order of ids:
// nil for ids that are not feed ids or whose owner does not exist (every
// user has every feed; a user that does not exist has none).
func (s *Store) FeedsByID(ctx context.Context, ids []string) ([]*Feed, error) {
	if len(ids) == 1 {
		rows, err := s.db.Query(ctx, feedByIDSQL, ids[0])
		return collectFeedsByID(rows, err, ids)
	}
	rows, err := s.db.Query(ctx, feedsByIDSQL, ids)
	return collectFeedsByID(rows, err, ids)
}

// collectFeedsByID reads the rows of feedsByIDSQL for ids (err is the query's).
func collectFeedsByID(rows pgx.Rows, err error, ids []string) ([]*Feed, error) {
	if err != nil {
		return nil, fmt.Errorf("store: feeds by id: %w", err)
	}
	defer rows.Close()
	type feedRow struct {
		followers, following int
		visibility           FeedVisibility
	}
	counts := map[string]feedRow{}
	for rows.Next() {
		var id string
		var c feedRow
		if err := rows.Scan(&id, &c.followers, &c.following, &c.visibility); err != nil {
			return nil, fmt.Errorf("store: feeds by id: %w", err)
		}
		counts[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: feeds by id: %w", err)
	}
	out := make([]*Feed, len(ids))
	for i, id := range ids {
		c, ok := counts[id]
		if !ok {
			continue
		}
		f, err := ParseFeedID("id", id)
		if err != nil {
			continue
		}
		f.FollowerCount, f.FollowingCount = c.followers, c.following
		if f.Group == GroupUser {
			f.Visibility = c.visibility
		}
		out[i] = f
	}
	return out, nil
}

// timeFloor is the smallest UUIDv7 of instant t: every id made at or after t
// sorts at or above it, so a time range is an id range.
func timeFloor(t time.Time) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ms)
	copy(u[0:6], b[2:8])
	return u
}

// idTime is the creation time a UUIDv7 carries, to the millisecond.
func idTime(id uuid.UUID) time.Time {
	var b [8]byte
	copy(b[2:8], id[0:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:]))).UTC()
}

// maxID sorts above every id: the position before a feed's first page.
var maxID = uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// feedSources is the SQL of the feeds a page merges: the feed's own entries
// ($1, from the beginning) and, for a timeline ($2), the entries of every
// followed feed that is pulled at read time, from the follow's boundary,
// unless its owner made it PRIVATE (then it is its owner's alone).
// The page is a k-way merge by id of one range scan per source. The
// privacy check is a lookup by key per pulled follow: as an anti-join the
// prepared statement's generic plan scanned the whole feeds table once per
// pulled follow.
const feedSources = `
	WITH src AS (
		SELECT $1::text AS feed, '00000000-0000-0000-0000-000000000000'::uuid AS since
		UNION ALL
		SELECT target, pull_from FROM follows WHERE source = $2 AND pulled
			AND (SELECT p.visibility FROM feeds p WHERE p.id = follows.target) IS DISTINCT FROM 'PRIVATE'
	)`

// feedActivitiesSQL reads a page of a feed: a k-way merge by id of one
// range scan per source feed, newest first.
const feedActivitiesSQL = feedSources + feedMergeSQL + `
	SELECT * FROM page ORDER BY id DESC`

// feedMergeSQL is the merge of feedActivitiesSQL, after its sources: CTEs
// ending in "page", the page's activities (activityColumns) in no order.
//
// Each scan must skip entries of removed activities before its limit
// (their entries go in a job that may not have run yet): counted in the
// limit and dropped by the join after it, they ended a page early and hid
// what followed. Checking every candidate costs a lookup per entry scanned
// (the sources' limits add up to many times the page), so the merge first
// takes the top ids without the check ("ids") and reads their activities
// ("fast"). When every id has its activity, no entry in the top was
// removed, so the top of the existing entries is the same page; only when
// one is missing does the checked merge run (its one-time filter is false
// otherwise, so PostgreSQL never starts it).
const feedMergeSQL = `,
	ids AS (
		SELECT DISTINCT e.activity_id FROM src
		CROSS JOIN LATERAL (
			SELECT fe.activity_id FROM feed_entries fe
			WHERE fe.feed_id = src.feed AND fe.activity_id < $3 AND fe.activity_id >= src.since
			ORDER BY fe.activity_id DESC LIMIT $4
		) e
		ORDER BY e.activity_id DESC LIMIT $4),
	fast AS (
		SELECT ` + activityColumnsA + ` FROM ids JOIN activities a ON a.id = ids.activity_id),
	page AS (
		SELECT * FROM fast WHERE (SELECT count(*) FROM fast) = (SELECT count(*) FROM ids)
		UNION ALL (
		SELECT ` + activityColumnsA + ` FROM (
			SELECT DISTINCT e.activity_id FROM src
			CROSS JOIN LATERAL (
				SELECT fe.activity_id FROM feed_entries fe
				WHERE fe.feed_id = src.feed AND fe.activity_id < $3 AND fe.activity_id >= src.since
				  AND EXISTS (SELECT 1 FROM activities x WHERE x.id = fe.activity_id)
				ORDER BY fe.activity_id DESC LIMIT $4
			) e
		) checked JOIN activities a ON a.id = checked.activity_id
		WHERE (SELECT count(*) FROM fast) <> (SELECT count(*) FROM ids)
		ORDER BY a.id DESC LIMIT $4))`

// sourceEntries is the SQL of the distinct activity ids of the page's
// sources (feedSources) whose entries satisfy cond, a condition on
// activity_id that may use src.since.
func sourceEntries(cond string) string {
	return `SELECT DISTINCT e.activity_id FROM src CROSS JOIN LATERAL (
		SELECT activity_id FROM feed_entries WHERE feed_id = src.feed AND ` + cond + `) e`
}

// FeedActivities returns a page of a feed's activities, newest first, after
// the activity id after (uuid.Nil for the first page).
func (s *Store) FeedActivities(ctx context.Context, f *Feed, after uuid.UUID, first int) (Page[*Activity], error) {
	if after == uuid.Nil {
		after = maxID
	}
	rows, err := s.db.Query(ctx, feedActivitiesSQL, contentFeed(f), pullsFor(f), after, first+1)
	if err != nil {
		return Page[*Activity]{}, fmt.Errorf("store: feed activities: %w", err)
	}
	acts, err := pgx.CollectRows(rows, scanActivityRow)
	if err != nil {
		return Page[*Activity]{}, fmt.Errorf("store: feed activities: %w", err)
	}
	return PageOf(acts, first), nil
}

// ActivityGroup is the activities of a feed with one verb on one UTC day.
type ActivityGroup struct {
	// ID is the group's key within its feed: "verb/2026-11-24".
	ID            string
	FeedID        string
	Verb          string
	ActivityCount int
	ActorCount    int
	// ActivityIDs are the group's newest activities, newest first (at most 10).
	ActivityIDs []uuid.UUID
	// ActorIDs are the group's most recent distinct actors (at most 10).
	ActorIDs  []string
	CreatedAt time.Time
	UpdatedAt time.Time
	// LatestID is the newest activity of the group; the cursor of a page.
	LatestID uuid.UUID
	IsSeen   bool
	IsRead   bool
}

// The aggregation rule: activities group by verb and the UTC day they were
// posted, and a group's id is "verb/day". It lives here and nowhere else:
// groupKeySQL in SQL, groupKey, groupKeyDay and groupDay in Go.
const groupKeySQL = `a.verb || '/' || ((a.created_at AT TIME ZONE 'UTC')::date)::text`

// groupKey is the id of the group an activity with verb posted at t joins.
func groupKey(verb string, t time.Time) string {
	return verb + "/" + t.UTC().Format(time.DateOnly)
}

// groupKeyDay returns the day of a group id. The day is after the last
// "/": a verb may hold one.
func groupKeyDay(id string) (time.Time, bool) {
	slash := strings.LastIndexByte(id, '/')
	if slash <= 0 {
		return time.Time{}, false
	}
	day, err := time.Parse(time.DateOnly, id[slash+1:])
	return day, err == nil && groupKey(id[:slash], day) == id
}

// groupDay is the UTC day an activity id was made on: its group's day.
func groupDay(id uuid.UUID) time.Time {
	t := idTime(id)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// FeedGroups returns a page of an aggregated or notification feed's groups,
// the group with the newest activity first, after the group whose newest
// activity is after (uuid.Nil for the first page). Groups never span days,
// so the page is read one day at a time, each day one range scan.
func (s *Store) FeedGroups(ctx context.Context, f *Feed, after uuid.UUID, first int) (Page[*ActivityGroup], error) {
	bound := after
	if bound == uuid.Nil {
		bound = maxID
	}
	var groups []*ActivityGroup
	marks, err := s.feedMarks(ctx, f.ID)
	if err != nil {
		return Page[*ActivityGroup]{}, err
	}
	for len(groups) <= first {
		// The newest entry below the bound names the next day with any.
		var newest *uuid.UUID
		err := s.db.QueryRow(ctx, feedSources+`
			SELECT e.activity_id FROM src CROSS JOIN LATERAL (
				SELECT activity_id FROM feed_entries
				WHERE feed_id = src.feed AND activity_id < $3 AND activity_id >= src.since
				ORDER BY activity_id DESC LIMIT 1
			) e ORDER BY e.activity_id DESC LIMIT 1`, contentFeed(f), pullsFor(f), bound).Scan(&newest)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return Page[*ActivityGroup]{}, fmt.Errorf("store: feed groups: %w", err)
		}
		if newest == nil {
			break
		}
		day := groupDay(*newest)
		// The whole day is grouped: a group an earlier page showed (its
		// newest activity at or above the cursor) may have older
		// activities below it, which grouped alone would show it again.
		dayGroups, err := s.dayGroups(ctx, f, timeFloor(day), timeFloor(day.AddDate(0, 0, 1)))
		if err != nil {
			return Page[*ActivityGroup]{}, err
		}
		for _, g := range dayGroups {
			if bytes.Compare(g.LatestID[:], bound[:]) >= 0 {
				continue
			}
			marks.apply(g)
			groups = append(groups, g)
		}
		bound = timeFloor(day)
	}
	return PageOf(groups, first), nil
}

// dayGroups aggregates the entries of a feed with ids in [from, below).
func (s *Store) dayGroups(ctx context.Context, f *Feed, from, below uuid.UUID) ([]*ActivityGroup, error) {
	rows, err := s.db.Query(ctx, feedSources+`
		SELECT `+groupKeySQL+`, a.verb, count(*), count(DISTINCT a.actor_id),
			(array_agg(a.id ORDER BY a.id DESC))[1:10],
			min(a.created_at), max(a.created_at), (array_agg(a.id ORDER BY a.id DESC))[1]
		FROM (`+sourceEntries(`activity_id < $3 AND activity_id >= greatest(src.since, $4)`)+`) ids JOIN activities a ON a.id = ids.activity_id
		GROUP BY 1, 2 ORDER BY (array_agg(a.id ORDER BY a.id DESC))[1] DESC`, contentFeed(f), pullsFor(f), below, from)
	if err != nil {
		return nil, fmt.Errorf("store: feed groups: %w", err)
	}
	groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*ActivityGroup, error) {
		g := &ActivityGroup{FeedID: f.ID}
		err := row.Scan(&g.ID, &g.Verb, &g.ActivityCount, &g.ActorCount, &g.ActivityIDs, &g.CreatedAt, &g.UpdatedAt, &g.LatestID)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: feed groups: %w", err)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	// The groups' most recent distinct actors, in one statement.
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = g.ID
	}
	rows, err = s.db.Query(ctx, feedSources+`
		SELECT k, actor_id FROM (
			SELECT `+groupKeySQL+` AS k, a.actor_id, (array_agg(a.id ORDER BY a.id DESC))[1] AS latest,
				row_number() OVER (PARTITION BY `+groupKeySQL+` ORDER BY (array_agg(a.id ORDER BY a.id DESC))[1] DESC) AS n
			FROM (`+sourceEntries(`activity_id < $3 AND activity_id >= greatest(src.since, $4)`)+`) ids JOIN activities a ON a.id = ids.activity_id
			GROUP BY 1, 2
		) x WHERE n <= 10 AND k = ANY($5) ORDER BY k, latest DESC`, contentFeed(f), pullsFor(f), below, from, keys)
	if err != nil {
		return nil, fmt.Errorf("store: feed group actors: %w", err)
	}
	byKey := make(map[string]*ActivityGroup, len(groups))
	for _, g := range groups {
		byKey[g.ID] = g
	}
	for rows.Next() {
		var k, actor string
		if err := rows.Scan(&k, &actor); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: feed group actors: %w", err)
		}
		if g := byKey[k]; g != nil {
			g.ActorIDs = append(g.ActorIDs, actor)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: feed group actors: %w", err)
	}
	return groups, nil
}

// feedMarkSet is a feed's seen/read state: whole-feed watermarks and
// per-group marks, each the newest activity id covered.
type feedMarkSet struct {
	seen, read           uuid.UUID
	groupSeen, groupRead map[string]uuid.UUID
}

// apply sets a group's seen and read flags: a group is seen (read) when its
// newest activity is covered by the feed's watermark or by its own mark, so
// a new activity in a seen group makes it unseen again.
func (m *feedMarkSet) apply(g *ActivityGroup) {
	cmp := func(a, b uuid.UUID) bool { return bytes.Compare(a[:], b[:]) >= 0 }
	g.IsSeen = cmp(m.seen, g.LatestID) || cmp(m.groupSeen[g.ID], g.LatestID)
	g.IsRead = cmp(m.read, g.LatestID) || cmp(m.groupRead[g.ID], g.LatestID)
}

func (s *Store) feedMarks(ctx context.Context, feedID string) (*feedMarkSet, error) {
	m := &feedMarkSet{groupSeen: map[string]uuid.UUID{}, groupRead: map[string]uuid.UUID{}}
	rows, err := s.db.Query(ctx, `SELECT group_id, coalesce(seen_upto, '00000000-0000-0000-0000-000000000000'),
		coalesce(read_upto, '00000000-0000-0000-0000-000000000000') FROM feed_marks WHERE feed_id = $1`, feedID)
	if err != nil {
		return nil, fmt.Errorf("store: feed marks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		var seen, read uuid.UUID
		if err := rows.Scan(&g, &seen, &read); err != nil {
			return nil, fmt.Errorf("store: feed marks: %w", err)
		}
		if g == "" {
			m.seen, m.read = seen, read
		} else {
			m.groupSeen[g], m.groupRead[g] = seen, read
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: feed marks: %w", err)
	}
	return m, nil
}

// FeedCounts are the unseen and unread groups of a feed.
type FeedCounts struct {
	Unseen int
	Unread int
}

// FeedUnseenUnread counts a feed's unseen and unread groups. Only groups
// with activities newer than the older feed watermark can count, so the
// scan covers what arrived since the feed was last marked.
func (s *Store) FeedUnseenUnread(ctx context.Context, f *Feed) (FeedCounts, error) {
	var c FeedCounts
	if f.Kind == FeedFlat {
		return c, nil
	}
	marks, err := s.feedMarks(ctx, f.ID)
	if err != nil {
		return c, err
	}
	since := marks.seen
	if bytes.Compare(marks.read[:], since[:]) < 0 {
		since = marks.read
	}
	rows, err := s.db.Query(ctx, feedSources+`
		SELECT `+groupKeySQL+`, (array_agg(a.id ORDER BY a.id DESC))[1] FROM (`+sourceEntries(`activity_id > greatest(src.since, $3)`)+`) ids JOIN activities a ON a.id = ids.activity_id
		GROUP BY 1`, contentFeed(f), pullsFor(f), since)
	if err != nil {
		return c, fmt.Errorf("store: feed counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		g := &ActivityGroup{}
		if err := rows.Scan(&g.ID, &g.LatestID); err != nil {
			return c, fmt.Errorf("store: feed counts: %w", err)
		}
		marks.apply(g)
		if !g.IsSeen {
			c.Unseen++
		}
		if !g.IsRead {
			c.Unread++
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("store: feed counts: %w", err)
	}
	return c, nil
}

// MarkFeed marks groups of a feed seen (and read, when read is set; a read
// group is also seen). No groups marks the whole feed up to its newest
// activity. Marking a group records its newest activity, so later
// activities make it unseen again.
func (s *Store) MarkFeed(ctx context.Context, f *Feed, groups []string, read bool) error {
	if f.Kind == FeedFlat {
		return Invalid("feed", "%s is a flat feed; only aggregated and notification feeds have seen and read state", f.ID)
	}
	if len(groups) > MaxPage {
		return Invalid("groups", "at most %d groups at a time", MaxPage)
	}
	// The groups' days bound the scan that finds their newest activities.
	var lo, hi time.Time
	for i, g := range groups {
		day, ok := groupKeyDay(g)
		if !ok {
			return Invalid(fmt.Sprintf("groups[%d]", i), "%q is not a group id of this feed", truncate(g, 80))
		}
		if lo.IsZero() || day.Before(lo) {
			lo = day
		}
		if end := day.AddDate(0, 0, 1); end.After(hi) {
			hi = end
		}
	}
	return s.InTx(ctx, func(tx *Store) error {
		if len(groups) == 0 {
			_, err := tx.db.Exec(ctx, feedSources+`,
				newest AS (SELECT e.activity_id AS id FROM src CROSS JOIN LATERAL (
					SELECT activity_id FROM feed_entries WHERE feed_id = src.feed AND activity_id >= src.since
					ORDER BY activity_id DESC LIMIT 1) e ORDER BY e.activity_id DESC LIMIT 1)
				INSERT INTO feed_marks (feed_id, group_id, seen_upto, read_upto)
				SELECT $3, '', newest.id, CASE WHEN $4 THEN newest.id END FROM newest WHERE newest.id IS NOT NULL
				ON CONFLICT (feed_id, group_id) DO UPDATE SET
					seen_upto = greatest(feed_marks.seen_upto, excluded.seen_upto),
					read_upto = CASE WHEN $4 THEN greatest(feed_marks.read_upto, excluded.read_upto) ELSE feed_marks.read_upto END`,
				contentFeed(f), pullsFor(f), f.ID, read)
			if err != nil {
				return fmt.Errorf("store: mark feed: %w", err)
			}
			return nil
		}
		// Each group is marked up to its newest activity now; a group id
		// with no activities marks nothing.
		_, err := tx.db.Exec(ctx, feedSources+`,
			latest AS (
				SELECT `+groupKeySQL+` AS g, (array_agg(a.id ORDER BY a.id DESC))[1] AS id FROM (`+sourceEntries(`activity_id >= greatest(src.since, $6) AND activity_id < $7`)+`) ids JOIN activities a ON a.id = ids.activity_id
				WHERE `+groupKeySQL+` = ANY($5)
				GROUP BY 1)
			INSERT INTO feed_marks (feed_id, group_id, seen_upto, read_upto)
			SELECT $3, latest.g, latest.id, CASE WHEN $4 THEN latest.id END FROM latest
			ON CONFLICT (feed_id, group_id) DO UPDATE SET
				seen_upto = greatest(feed_marks.seen_upto, excluded.seen_upto),
				read_upto = CASE WHEN $4 THEN greatest(feed_marks.read_upto, excluded.read_upto) ELSE feed_marks.read_upto END`,
			contentFeed(f), pullsFor(f), f.ID, read, groups, timeFloor(lo), timeFloor(hi))
		if err != nil {
			return fmt.Errorf("store: mark feed groups: %w", err)
		}
		return nil
	})
}
