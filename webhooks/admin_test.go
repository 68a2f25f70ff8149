package webhooks_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// webhookDeliveries pages newest first with first and after, and filters
// by status; webhooks lists what upsertWebhook wrote, never its secret.
func TestDeliveriesPageAndWebhooksList(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := channel(t, n, alice, "page-"+tag)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	hook := "page-" + tag
	upsert(t, n, hook, srv.URL, "message.new")
	for _, text := range []string{"one", "two", "three"} {
		send(t, n, alice, cid, text)
		// One at a time, so that "newest first" has one answer.
		waitFor(t, text+" delivered", func() bool { return slices.Contains(rcv.accepted(cid, func(hit, int) bool { return true }), text) })
	}
	admin := env.AdminToken(t, "admin")
	type page struct {
		WebhookDeliveries struct {
			Edges []struct {
				Cursor string
				Node   struct{ ID, Status, Body string }
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	q := `query($w: ID!, $s: WebhookDeliveryStatus, $first: Int, $after: String) {
		webhookDeliveries(webhook: $w, status: $s, first: $first, after: $after) {
			edges { cursor node { id status body } } pageInfo { hasNextPage endCursor } } }`
	texts := func(p page) []string {
		var out []string
		for _, e := range p.WebhookDeliveries.Edges {
			for _, s := range []string{"one", "two", "three"} {
				if strings.Contains(e.Node.Body, `"text":"`+s+`"`) {
					out = append(out, s)
				}
			}
		}
		return out
	}
	var p1, p2, pending page
	n.Must(t, admin, q, brooktest.Vars{"w": hook, "first": 2}, &p1)
	if got := texts(p1); !slices.Equal(got, []string{"three", "two"}) || !p1.WebhookDeliveries.PageInfo.HasNextPage {
		t.Fatalf("first page %v (next %v), want [three two] and more", got, p1.WebhookDeliveries.PageInfo.HasNextPage)
	}
	n.Must(t, admin, q, brooktest.Vars{"w": hook, "first": 2, "after": p1.WebhookDeliveries.PageInfo.EndCursor}, &p2)
	if got := texts(p2); !slices.Equal(got, []string{"one"}) || p2.WebhookDeliveries.PageInfo.HasNextPage {
		t.Fatalf("second page %v (next %v), want [one] and no more", got, p2.WebhookDeliveries.PageInfo.HasNextPage)
	}
	n.Must(t, admin, q, brooktest.Vars{"w": hook, "s": "PENDING"}, &pending)
	if len(pending.WebhookDeliveries.Edges) != 0 {
		t.Fatalf("%d PENDING deliveries, want none", len(pending.WebhookDeliveries.Edges))
	}

	var list struct {
		Webhooks []struct {
			ID, URL string
			Events  []string
			Active  bool
		}
	}
	n.Must(t, admin, `{ webhooks { id url events active } }`, nil, &list)
	i := slices.IndexFunc(list.Webhooks, func(w struct {
		ID, URL string
		Events  []string
		Active  bool
	}) bool {
		return w.ID == hook
	})
	if i < 0 || list.Webhooks[i].URL != srv.URL || !slices.Equal(list.Webhooks[i].Events, []string{"message.new"}) || !list.Webhooks[i].Active {
		t.Fatalf("webhooks %+v, want %s at %s for message.new, active", list.Webhooks, hook, srv.URL)
	}
	if res := n.Query(t, admin, `{ webhooks { id secret } }`, nil); res.Code() == "" {
		t.Fatal("a webhook's secret can be read back")
	}
}
