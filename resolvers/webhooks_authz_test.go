package resolvers_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// The rows of the authorization matrix for webhooks (issue 21): admins
// alone register endpoints and see deliveries, whose bodies may carry any
// channel's messages.
func init() {
	matrix = append(matrix,
		policy{op: "query.webhooks", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `{ webhooks { id } }`, nil
		}},
		policy{op: "query.webhookDeliveries", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($w: ID!) { webhookDeliveries(webhook: $w) { edges { node { id } } } }`, brooktest.Vars{"w": f.webhook(t)}
		}},
		policy{op: "mutation.upsertWebhook", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { upsertWebhook(id: $id, url: "http://127.0.0.1:1/hook", events: ["message.new"],
				secret: "authz-secret-0123456789", active: false) { id } }`, brooktest.Vars{"id": "authz-" + brooktest.Tag()}
		}},
		policy{op: "mutation.deleteWebhook", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { deleteWebhook(id: $id) }`, brooktest.Vars{"id": f.webhook(t)}
		}},
		policy{op: "mutation.redeliverWebhook", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($d: ID!) { redeliverWebhook(delivery: $d) { id } }`, brooktest.Vars{"d": f.delivery(t)}
		}},
	)
}

// webhook registers an inactive webhook (it sends nothing) and returns its id.
func (f *fixture) webhook(t *testing.T) string {
	t.Helper()
	id := "authz-" + brooktest.Tag()
	if _, err := f.node.Store.UpsertWebhook(context.Background(), store.Webhook{ID: id, URL: "http://127.0.0.1:1/hook",
		Events: []string{"message.new"}, Secret: "authz-secret-0123456789"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// delivery writes a delivery of an inactive webhook and returns its id.
func (f *fixture) delivery(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	hook := f.webhook(t)
	if err := f.node.Store.AddDeliveries(ctx, []store.NewDelivery{{WebhookID: hook, Key: "channel:authz", EventType: "message.new",
		Body: `{"type":"message.new"}`, OccurredAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	page, err := f.node.Store.WebhookDeliveries(ctx, hook, nil, 1, nil)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("delivery: %v", err)
	}
	return page.Items[0].ID.String()
}
