package webhooks

import (
	"context"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Admin operations: only admins register webhooks and see deliveries (a
// delivery's body may carry any channel's messages).

var (
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	eventPattern = regexp.MustCompile(`^([a-z_]+\.[a-z_]+|\*)$`)
)

func requireAdmin(ctx context.Context, what string) error {
	me, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if !me.IsAdmin() {
		return auth.Forbidden("%s needs an admin token", what)
	}
	return nil
}

// checkID refuses a webhook id no webhook can have (upsertWebhook's rule),
// before it reaches SQL.
func checkID(field, id string) error {
	if !idPattern.MatchString(id) {
		return store.Invalid(field, "must be 1 to 64 letters, digits or _ . : -")
	}
	return nil
}

// Upsert creates or replaces webhook id: where to POST (an http or https
// URL), which event types ("*": all), the signing secret, and whether it
// is active. Every node sees the change at once (a bus notice) or within
// the reload interval.
func (s *Service) Upsert(ctx context.Context, id, rawURL string, events []string, secret string, active bool) (*store.Webhook, error) {
	if err := requireAdmin(ctx, "registering a webhook"); err != nil {
		return nil, err
	}
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(rawURL) > 2000 {
		return nil, store.Invalid("url", "must be an absolute http or https URL")
	}
	if len(events) == 0 || len(events) > 100 {
		return nil, store.Invalid("events", "must list 1 to 100 event types, or \"*\" for every type")
	}
	seen := map[string]bool{}
	var list []string
	for _, e := range events {
		e = strings.TrimSpace(e)
		if !eventPattern.MatchString(e) {
			return nil, store.Invalid("events", "%q is not an event type (such as message.new) or \"*\"", e)
		}
		if !seen[e] {
			seen[e] = true
			list = append(list, e)
		}
	}
	if len(secret) < 16 || len(secret) > 256 {
		return nil, store.Invalid("secret", "must be 16 to 256 characters")
	}
	w, err := s.store.UpsertWebhook(ctx, store.Webhook{ID: id, URL: rawURL, Events: list, Secret: secret, Active: active})
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return w, nil
}

// Delete removes a webhook and its deliveries; false when there was none.
func (s *Service) Delete(ctx context.Context, id string) (bool, error) {
	if err := requireAdmin(ctx, "deleting a webhook"); err != nil {
		return false, err
	}
	if err := checkID("id", id); err != nil {
		return false, err
	}
	ok, err := s.store.DeleteWebhook(ctx, id)
	if err != nil {
		return false, err
	}
	s.changed(ctx)
	return ok, nil
}

// List returns every webhook, by id.
func (s *Service) List(ctx context.Context) ([]*store.Webhook, error) {
	if err := requireAdmin(ctx, "listing webhooks"); err != nil {
		return nil, err
	}
	return s.store.Webhooks(ctx)
}

// Deliveries lists a webhook's deliveries, newest first, optionally of one
// status.
func (s *Service) Deliveries(ctx context.Context, webhook string, status *store.WebhookDeliveryStatus, first *int, after *string) (store.Page[*store.WebhookDelivery], error) {
	if err := requireAdmin(ctx, "listing webhook deliveries"); err != nil {
		return store.Page[*store.WebhookDelivery]{}, err
	}
	if err := checkID("webhook", webhook); err != nil {
		return store.Page[*store.WebhookDelivery]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.WebhookDelivery]{}, err
	}
	var afterID *uuid.UUID
	if pos != "" {
		id, err := store.ParseID("after", pos)
		if err != nil {
			return store.Page[*store.WebhookDelivery]{}, err
		}
		afterID = &id
	}
	return s.store.WebhookDeliveries(ctx, webhook, status, n, afterID)
}

// Redeliver makes a delivery (parked, failed, or even delivered) due again
// now, with a fresh count of attempts.
func (s *Service) Redeliver(ctx context.Context, delivery string) (*store.WebhookDelivery, error) {
	if err := requireAdmin(ctx, "redelivering a webhook delivery"); err != nil {
		return nil, err
	}
	id, err := store.ParseID("delivery", delivery)
	if err != nil {
		return nil, err
	}
	d, err := s.store.RedeliverWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	s.Wake()
	return d, nil
}
