package pgha

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
)

// world is a migrated primary with a streaming replica, and a Redis.
type world struct {
	env     *brooktest.Env
	primary *local.Postgres
	replica *local.Replica
}

func startWorld(t *testing.T, synchronous bool) *world {
	t.Helper()
	local.ClusterTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pg, err := local.StartPostgres(ctx, filepath.Join(dir, "primary"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Kill() })
	if err := pg.CreateDatabase(ctx, "brook"); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Apply(ctx, pg.URL("brook")); err != nil {
		t.Fatal(err)
	}
	r, err := local.StartReplica(ctx, pg, filepath.Join(dir, "replica"), synchronous)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	rd, err := local.StartRedis(ctx, filepath.Join(dir, "redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Kill() })
	keys, err := auth.NewKeys([]byte(brooktest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	env := &brooktest.Env{Env: &local.Env{DatabaseURL: pg.URL("brook"), RedisURL: rd.URL(), Postgres: pg, Redis: rd, Replica: r}, Keys: keys}
	return &world{env: env, primary: pg, replica: r}
}

func createChannel(t *testing.T, n *brooktest.Node, token, id string, members ...string) string {
	t.Helper()
	var out struct{ CreateChannel struct{ ID string } }
	n.Must(t, token, `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": id, "members": members, "name": id}}, &out)
	return out.CreateChannel.ID
}

// texts reads a channel's last messages' texts as the token's user.
func texts(t *testing.T, n *brooktest.Node, token, channel string) []string {
	t.Helper()
	var out struct {
		Channel struct {
			Messages struct {
				Edges []struct{ Node struct{ Text string } }
			}
		}
	}
	n.Must(t, token, `query($c: ID!) { channel(id: $c) { messages(last: 50) { edges { node { text } } } } }`, brooktest.Vars{"c": channel}, &out)
	var s []string
	for _, e := range out.Channel.Messages.Edges {
		s = append(s, e.Node.Text)
	}
	return s
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
