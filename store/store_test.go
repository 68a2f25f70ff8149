package store_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
	"github.com/brookhq/brook/store"
)

var env *local.Env

func TestMain(m *testing.M) {
	os.Exit(local.TestMain(m, func(e *local.Env) error {
		env = e
		return migrations.Apply(context.Background(), e.DatabaseURL)
	}))
}

func open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{DatabaseURL: env.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func ptr[T any](v T) *T { return &v }

func TestUpsertUsersPatchesOnlyWhatIsSet(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	data := json.RawMessage(`{"team":"blue"}`)
	users, err := s.UpsertUsers(ctx, []store.UserChange{
		{ID: "pat", Name: store.Patch[string]{Set: true, Value: ptr("Pat")}, Data: store.Patch[json.RawMessage]{Set: true, Value: &data}},
		{ID: "quinn"},
	})
	if err != nil || len(users) != 2 || users[0].ID != "pat" || users[1].ID != "quinn" {
		t.Fatalf("upsert: %+v %v", users, err)
	}
	if users[0].Role != store.RoleUser || string(users[0].Data) != `{"team": "blue"}` {
		t.Fatalf("pat: %+v data %s", users[0], users[0].Data)
	}
	// Image set, name left alone, data cleared.
	users, err = s.UpsertUsers(ctx, []store.UserChange{{
		ID:    "pat",
		Image: store.Patch[string]{Set: true, Value: ptr("https://img/pat")},
		Data:  store.Patch[json.RawMessage]{Set: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u := users[0]
	if u.Name == nil || *u.Name != "Pat" || u.Image == nil || *u.Image != "https://img/pat" || u.Data != nil {
		t.Fatalf("after patch: %+v", u)
	}
	if !u.UpdatedAt.After(u.CreatedAt) {
		t.Fatalf("updated_at %v not after created_at %v", u.UpdatedAt, u.CreatedAt)
	}
	got, err := s.UsersByID(ctx, []string{"quinn", "nobody", "pat"})
	if err != nil || got[0].ID != "quinn" || got[1] != nil || got[2].ID != "pat" {
		t.Fatalf("UsersByID: %+v %v", got, err)
	}
	if _, err := s.User(ctx, "nobody"); err == nil {
		t.Fatal("missing user must be NotFound")
	}
}

func TestTouchUserCreatesThenRefreshes(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if err := s.TouchUser(ctx, "robin", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	first, err := s.User(ctx, "robin")
	if err != nil || first.Role != store.RoleAdmin || first.LastActive == nil {
		t.Fatalf("created: %+v %v", first, err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := s.TouchUser(ctx, "robin", store.RoleUser); err != nil {
		t.Fatal(err)
	}
	again, _ := s.User(ctx, "robin")
	if again.Role != store.RoleAdmin || !again.LastActive.After(*first.LastActive) {
		t.Fatalf("touch must refresh last_active and keep the role: %+v", again)
	}
}

func TestStatementsCountsBatchesAndQueries(t *testing.T) {
	s := open(t)
	before := s.Statements()
	if _, err := s.UsersByID(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUsers(context.Background(), []store.UserChange{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}}); err != nil {
		t.Fatal(err)
	}
	// One select; then begin, three batched inserts, commit.
	if got := s.Statements() - before; got != 1+1+3+1 {
		t.Fatalf("statements: %d, want 6", got)
	}
}
