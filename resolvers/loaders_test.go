package resolvers_test

import (
	"context"
	"testing"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/resolvers"
)

// me reads the caller once and leaves it in the request's Users loader,
// so a field that loads the caller afterwards (user(id:), an author, a
// creator) costs no statement.
func TestMePrimesTheUsersLoader(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	id := "primer-" + brooktest.Tag()
	env.AddUsers(t, n, id)
	l := n.Resolver.NewLoaders()
	ctx := resolvers.WithLoaders(auth.WithIdentity(context.Background(), auth.Identity{UserID: id, Role: auth.RoleUser}), l)

	before := n.Store.Statements()
	me, err := n.Resolver.Query().Me(ctx)
	if err != nil || me == nil || me.ID != id {
		t.Fatalf("me: %+v %v", me, err)
	}
	if ran := n.Store.Statements() - before; ran != 1 {
		t.Fatalf("me ran %d statements, want 1", ran)
	}
	u, err := l.Users.Load(ctx, id)
	if err != nil || u != me {
		t.Fatalf("the caller through the loader after me: %+v %v, want me's own", u, err)
	}
	if ran := n.Store.Statements() - before; ran != 1 {
		t.Fatalf("me, then the caller through the loader, ran %d statements, want 1", ran)
	}
}
