package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/store"
)

// The shapes the chat guide says are indexed use their index: each list's
// statement is planned with sequential scans off (the test tables are too
// small for a planner to prefer an index otherwise), and the plan must
// name the index. A partial index whose predicate the query does not
// imply, or a sort key written unlike the index, would fail here.
func TestChannelListIndexes(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	me := fmt.Sprintf("idx-%d", time.Now().UnixNano())
	if _, err := s.UpsertUsers(ctx, []store.UserChange{{ID: me}, {ID: me + "-other"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := s.CreateChannel(ctx, me+"-other", store.ChannelInput{Type: store.ChannelLivestream, Name: ptr(fmt.Sprintf("Ab %d", i)),
			Data: json.RawMessage(`{"team":"blue"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Many more open channels of another team, so that the data filter is
	// selective, as it is where it matters.
	if _, err := s.SQL().Exec(ctx, `
		INSERT INTO channels (id, type, name, data, created_by, member_count)
		SELECT 'livestream:' || $1 || '-' || i, 'livestream', 'Red ' || i, jsonb_build_object('team', 'red', 'n', i), $2, 1
		FROM generate_series(1, 300) AS i`, me, me+"-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SQL().Exec(ctx, `ANALYZE channels`); err != nil {
		t.Fatal(err)
	}
	desc := []store.ChannelSort{{Field: store.SortCreatedAt, Direction: store.SortDesc}}
	page, err := s.UserChannels(ctx, me, store.ChannelFilter{Joined: ptr(false)}, desc, 1, "")
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("first page: %+v %v", page, err)
	}
	pos := page.Items[0].Cursor
	cases := []struct {
		name  string
		f     store.ChannelFilter
		sort  []store.ChannelSort
		after string
		index string
		// bitmap: plain index scans off too, as a planner picks a bitmap
		// scan of the inverted index once the data filter is selective.
		bitmap bool
	}{
		{"open by creation", store.ChannelFilter{Joined: ptr(false), Invited: ptr(false)}, desc, "", "channels_open_created", false},
		{"open by creation, after a cursor", store.ChannelFilter{Joined: ptr(false), Invited: ptr(false)}, desc, pos, "channels_open_created", false},
		{"open and invitations by creation", store.ChannelFilter{Joined: ptr(false)}, desc, pos, "channels_open_created", false},
		{"open by member count", store.ChannelFilter{Joined: ptr(false)}, []store.ChannelSort{{Field: store.SortMemberCount}}, "", "channels_open_members", false},
		{"open by name", store.ChannelFilter{Joined: ptr(false)}, []store.ChannelSort{{Field: store.SortName}}, "", "channels_open_name", false},
		{"open by name prefix", store.ChannelFilter{Joined: ptr(false), NameStartsWith: ptr("ab")}, nil, "", "channels_open_name", false},
		{"open by data", store.ChannelFilter{Joined: ptr(false), Data: json.RawMessage(`{"team":"blue"}`)}, nil, "", "channels_data", true},
		{"mine", store.ChannelFilter{}, nil, "", "channel_members_by_user", false},
		{"mine with members", store.ChannelFilter{Members: &store.ChannelMembersFilter{Includes: []string{me + "-other"}}}, nil, "", "channel_members_by_user", false},
	}
	for _, c := range cases {
		sql, args, err := store.ChannelListSQL(me, c.f, c.sort, 20, c.after)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		plan := explain(t, s, sql, args, c.bitmap)
		if !strings.Contains(plan, c.index) {
			t.Errorf("%s: the plan does not use %s:\n%s\n%s", c.name, c.index, sql, plan)
		}
	}
}

func explain(t *testing.T, s *store.Store, sql string, args []any, bitmap bool) string {
	t.Helper()
	ctx := context.Background()
	var plan []string
	err := s.InTx(ctx, func(tx *store.Store) error {
		if _, err := tx.SQL().Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		if bitmap {
			if _, err := tx.SQL().Exec(ctx, `SET LOCAL enable_indexscan = off`); err != nil {
				return err
			}
		}
		rows, err := tx.SQL().Query(ctx, `EXPLAIN `+sql, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
