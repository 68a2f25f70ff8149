package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// The retention job deletes DELIVERED deliveries older than the retention,
// in batches, and keeps recent ones and those still pending, failing or
// parked whatever their age.
func TestRetentionDeletesOldDelivered(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) {
		fastHooks(o)
		o.Webhooks.Retention = time.Hour
		o.Webhooks.RetentionBatch = 2
	}})
	tag := brooktest.Tag()
	hook := "ret-" + tag
	upsert(t, n, hook, "http://127.0.0.1:1/never", "nothing.wanted")
	add := func(status string, deliveredAgo time.Duration, count int) {
		for range count {
			var at any
			if status == "DELIVERED" {
				at = time.Now().Add(-deliveredAgo)
			}
			n.Count(t, `WITH ins AS (INSERT INTO webhook_deliveries (id, webhook_id, order_key, event_type, body, status, occurred_at, created_at, delivered_at)
				VALUES (gen_random_uuid(), $1, 'k', 'x.y', '{}', $2, now() - $3::interval, now() - $3::interval, $4) RETURNING 1)
				SELECT count(*) FROM ins`, hook, status, deliveredAgo.String(), at)
		}
	}
	add("DELIVERED", 48*time.Hour, 5) // deleted, in three batches
	add("DELIVERED", time.Minute, 2)  // recent: kept
	add("PARKED", 48*time.Hour, 1)
	add("FAILED", 48*time.Hour, 1)
	add("PENDING", 48*time.Hour, 1)
	deleted, err := n.Hooks.DeleteDelivered(context.Background(), time.Now().Add(-time.Hour))
	if err != nil || deleted != 5 {
		t.Fatalf("deleted %d (%v), want 5", deleted, err)
	}
	count := func(status string) int {
		return n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = $2`, hook, status)
	}
	if d, p, f, q := count("DELIVERED"), count("PARKED"), count("FAILED"), count("PENDING"); d != 2 || p != 1 || f != 1 || q != 1 {
		t.Fatalf("left %d delivered, %d parked, %d failed, %d pending; want 2, 1, 1, 1", d, p, f, q)
	}
}

// The job runs by itself on a node with workers.
func TestRetentionJobRuns(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		fastHooks(o)
		o.Webhooks.Retention = time.Hour
		o.Webhooks.RetentionEvery = 50 * time.Millisecond
	}})
	tag := brooktest.Tag()
	hook := "retjob-" + tag
	upsert(t, n, hook, "http://127.0.0.1:1/never", "nothing.wanted")
	n.Count(t, `WITH ins AS (INSERT INTO webhook_deliveries (id, webhook_id, order_key, event_type, body, status, occurred_at, delivered_at)
		VALUES (gen_random_uuid(), $1, 'k', 'x.y', '{}', 'DELIVERED', now() - interval '2 days', now() - interval '2 days') RETURNING 1)
		SELECT count(*) FROM ins`, hook)
	// Another test's node may have scheduled the cluster's one retention
	// job for later: make it due now.
	n.Count(t, `WITH up AS (UPDATE jobs SET run_at = now() WHERE kind = 'webhooks.retention' RETURNING 1) SELECT count(*) FROM up`)
	waitFor(t, "the retention job", func() bool {
		return n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, hook) == 0
	})
}
