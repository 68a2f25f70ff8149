package users_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// A mutation that fails part way writes nothing.
func TestFailedUpsertWritesNothing(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	admin := env.AdminToken(t, "admin")
	r := n.Query(t, admin, `mutation { upsertUsers(users: [{id: "gina", name: "G"}, {id: "bad id"}]) { id } }`, nil)
	if r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("got %+v", r.Errors)
	}
	var count int
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM users WHERE id = 'gina'`).Scan(&count)
	if count != 0 {
		t.Fatal("the valid half of a failed upsert was written")
	}
}

func TestUsersQueries(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	admin := env.AdminToken(t, "admin")
	n.Must(t, admin, `mutation { upsertUsers(users: [
		{id: "u1", name: "One", image: "https://img/1", data: {team: "red"}},
		{id: "u2", name: "Two"}]) { id } }`, nil, nil)
	// Fields left out keep their values; null clears.
	var got struct {
		UpsertUsers []struct {
			ID    string
			Name  *string
			Image *string
			Data  map[string]any
		}
	}
	n.Must(t, admin, `mutation { upsertUsers(users: [{id: "u1", image: null}]) { id name image data } }`, nil, &got)
	u := got.UpsertUsers[0]
	if u.Name == nil || *u.Name != "One" || u.Image != nil || u.Data["team"] != "red" {
		t.Fatalf("partial upsert: %+v", u)
	}
	var list struct {
		Users []*struct {
			ID     string
			Name   *string
			Online bool
		}
	}
	n.Must(t, admin, `{ users(ids: ["u2", "ghost", "u1"]) { id name online } }`, nil, &list)
	if len(list.Users) != 3 || list.Users[0].ID != "u2" || list.Users[1] != nil || list.Users[2].ID != "u1" {
		t.Fatalf("users in asked order with null for missing: %+v", list.Users)
	}
	var one struct{ User *struct{ ID string } }
	n.Must(t, admin, `{ user(id: "ghost") { id } }`, nil, &one)
	if one.User != nil {
		t.Fatal("missing user must be null")
	}
}

func TestUserUpdatedAcrossTwoNodes(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	watcher := b.MustDial(t, env.Token(t, "watcher"))
	sub := watcher.Subscribe(`subscription { userUpdated(id: "hana") { id name online } }`, nil)
	time.Sleep(100 * time.Millisecond) // let the subscription start
	a.Must(t, env.Token(t, "hana"), `mutation { upsertUsers(users: [{id: "hana", name: "Hana"}]) { id } }`, nil, nil)
	var got struct{ UserUpdated struct{ ID, Name string } }
	sub.NextData(&got)
	if got.UserUpdated.Name != "Hana" {
		t.Fatalf("node B got %+v", got)
	}
	// Presence: hana connects to node A; the watcher on B sees her online.
	hana := a.MustDial(t, env.Token(t, "hana"))
	var presence struct{ UserUpdated struct{ Online bool } }
	sub.NextData(&presence)
	if !presence.UserUpdated.Online {
		t.Fatal("expected hana online")
	}
	_ = hana.Close()
	sub.NextData(&presence)
	if presence.UserUpdated.Online {
		t.Fatal("expected hana offline after her connection closed")
	}
}
