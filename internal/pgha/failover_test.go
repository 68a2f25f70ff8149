package pgha

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// The primary is killed under load and its synchronous replica promoted:
// sends during the switch fail with UNAVAILABLE and retryAfter, succeed
// again without restarting the node (its multi-host DATABASE_URL finds the
// new primary), and every acknowledged message is in the new primary.
func TestPostgresPrimaryFailover(t *testing.T) {
	w := startWorld(t, true)
	ctx := context.Background()
	n := w.env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.DatabaseURL = w.replica.MultiHostURL("brook")
		o.ReplicaURLs = []string{} // the replica is the standby here, not a read replica
	}})
	const clients = 6
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	w.env.AddUsers(t, n, ids...)
	ch := createChannel(t, n, w.env.Token(t, ids[0]), "failover", ids[1:]...)

	var (
		mu       sync.Mutex
		acked    []string
		failed   int
		lastFail time.Time
		bad      []string
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for i := 0; i < clients; i++ {
		c := n.Client(w.env.Token(t, ids[i]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				res, err := c.Do(rctx, send, brooktest.Vars{"c": ch, "t": fmt.Sprintf("c%d-%d", i, k)})
				cancel()
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case len(res.Errors) > 0:
					failed++
					lastFail = time.Now()
					e := res.Errors[0]
					if e.Code() != "UNAVAILABLE" || e.Extensions["retryAfter"] == nil {
						bad = append(bad, fmt.Sprintf("%s %v: %s", e.Code(), e.Extensions, e.Message))
					}
				default:
					var out struct{ SendMessage struct{ ID string } }
					if err := json.Unmarshal(res.Data, &out); err != nil || out.SendMessage.ID == "" {
						bad = append(bad, "no id in "+string(res.Data))
					} else {
						acked = append(acked, out.SendMessage.ID)
					}
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	brooktest.Eventually(t, "100 messages sent before the failover", func() bool { return count() >= 100 })

	killed := time.Now()
	before := count()
	if err := w.primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := w.replica.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	atPromotion := count()
	brooktest.Eventually(t, "100 messages sent after the promotion", func() bool { return count() >= atPromotion+100 })
	stop.Store(true)
	wg.Wait()

	if len(bad) > 0 {
		t.Fatalf("%d sends failed otherwise than UNAVAILABLE with retryAfter, first: %s", len(bad), bad[0])
	}
	conn, err := pgx.Connect(ctx, w.replica.URL("brook"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var found int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM messages WHERE id::text = ANY($1)`, acked).Scan(&found); err != nil {
		t.Fatal(err)
	}
	recovered := "no send failed"
	if failed > 0 {
		recovered = lastFail.Sub(killed).Round(time.Millisecond).String() + " after the kill"
	}
	t.Logf("failover: %d sends acknowledged (%d before the kill), %d failed with UNAVAILABLE, last failure %s; promotion took %s; lost %d",
		len(acked), before, failed, recovered, promoted.Sub(killed).Round(time.Millisecond), len(acked)-found)
	if found != len(acked) {
		t.Fatalf("%d acknowledged messages missing from the promoted primary", len(acked)-found)
	}
}
