package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Webhook is an endpoint an admin registered to receive events.
type Webhook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Events are the event types delivered; "*" delivers every type.
	Events []string `json:"events"`
	// Secret signs every delivery (HMAC-SHA256); never shown back.
	Secret    string    `json:"-"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Wants reports whether the webhook is active and subscribed to typ.
func (w *Webhook) Wants(typ string) bool {
	if !w.Active {
		return false
	}
	for _, e := range w.Events {
		if e == "*" || e == typ {
			return true
		}
	}
	return false
}

// WebhookDeliveryStatus is where a webhook delivery stands.
type WebhookDeliveryStatus string

// Delivery states.
const (
	// DeliveryPending: not tried yet, or due again (redelivered).
	DeliveryPending WebhookDeliveryStatus = "PENDING"
	// DeliveryDelivered: the receiver answered 2xx.
	DeliveryDelivered WebhookDeliveryStatus = "DELIVERED"
	// DeliveryFailed: the last attempt failed; it is retried at NextAt.
	DeliveryFailed WebhookDeliveryStatus = "FAILED"
	// DeliveryParked: it failed too often; an admin may redeliver it.
	DeliveryParked WebhookDeliveryStatus = "PARKED"
)

// MarshalGQL writes the status as its GraphQL enum value.
func (s WebhookDeliveryStatus) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(s)))
}

// UnmarshalGQL reads a GraphQL enum value.
func (s *WebhookDeliveryStatus) UnmarshalGQL(v any) error {
	return UnmarshalEnum(s, v, "status", "delivery status", DeliveryPending, DeliveryDelivered, DeliveryFailed, DeliveryParked)
}

// WebhookDelivery is one event's delivery to one webhook.
type WebhookDelivery struct {
	ID        uuid.UUID             `json:"id"`
	Webhook   string                `json:"webhook"`
	Key       string                `json:"key"`
	EventType string                `json:"eventType"`
	Body      string                `json:"body"`
	Status    WebhookDeliveryStatus `json:"status"`
	Attempts  int                   `json:"attempts"`
	// LastError and LastStatus describe the last failed attempt.
	LastError   *string    `json:"lastError,omitempty"`
	LastStatus  *int       `json:"lastStatus,omitempty"`
	OccurredAt  time.Time  `json:"occurredAt"`
	NextAt      time.Time  `json:"nextAt"`
	CreatedAt   time.Time  `json:"createdAt"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
}

// NewDelivery is a delivery to write: one event for one webhook.
type NewDelivery struct {
	WebhookID  string
	Key        string
	EventType  string
	Body       string
	OccurredAt time.Time
}

const webhookColumns = `id, url, events, secret, active, created_at, updated_at`

func scanWebhook(row pgx.Row) (*Webhook, error) {
	var w Webhook
	err := row.Scan(&w.ID, &w.URL, &w.Events, &w.Secret, &w.Active, &w.CreatedAt, &w.UpdatedAt)
	return &w, err
}

// UpsertWebhook creates or replaces the webhook w.ID.
func (s *Store) UpsertWebhook(ctx context.Context, w Webhook) (*Webhook, error) {
	got, err := scanWebhook(s.db.QueryRow(ctx, `
		INSERT INTO webhooks (id, url, events, secret, active) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET url = $2, events = $3, secret = $4, active = $5, updated_at = now()
		RETURNING `+webhookColumns, w.ID, w.URL, w.Events, w.Secret, w.Active))
	if err != nil {
		return nil, fmt.Errorf("store: upsert webhook: %w", err)
	}
	return got, nil
}

// DeleteWebhook deletes a webhook and its deliveries; false when there
// was none.
func (s *Store) DeleteWebhook(ctx context.Context, id string) (bool, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("store: delete webhook: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Webhooks lists every webhook, by id.
func (s *Store) Webhooks(ctx context.Context) ([]*Webhook, error) {
	rows, err := s.db.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	hooks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Webhook, error) { return scanWebhook(row) })
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	return hooks, nil
}

// AddDeliveries writes deliveries; call it in the transaction of the
// change they announce.
func (s *Store) AddDeliveries(ctx context.Context, ds []NewDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(ds))
	hooks, keys, types, bodies := make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds))
	at := make([]time.Time, len(ds))
	for i, d := range ds {
		ids[i], hooks[i], keys[i], types[i], bodies[i], at[i] = NewID(), d.WebhookID, d.Key, d.EventType, d.Body, d.OccurredAt
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO webhook_deliveries (id, webhook_id, order_key, event_type, body, occurred_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])`,
		ids, hooks, keys, types, bodies, at)
	if err != nil {
		return fmt.Errorf("store: add webhook deliveries: %w", err)
	}
	return nil
}

const deliveryColumns = `id, webhook_id, order_key, event_type, body, status, attempts, last_error, last_status,
	occurred_at, next_at, created_at, delivered_at`

func scanDelivery(row pgx.Row) (*WebhookDelivery, error) {
	var d WebhookDelivery
	err := row.Scan(&d.ID, &d.Webhook, &d.Key, &d.EventType, &d.Body, &d.Status, &d.Attempts, &d.LastError, &d.LastStatus,
		&d.OccurredAt, &d.NextAt, &d.CreatedAt, &d.DeliveredAt)
	return &d, err
}

func collectDeliveries(rows pgx.Rows, err error) ([]*WebhookDelivery, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*WebhookDelivery, error) { return scanDelivery(row) })
}

// ClaimDeliveries leases up to limit due deliveries for lease: each the
// oldest outstanding one of its webhook and key (a later one waits while
// an earlier one is pending or failing), at most perHook of one webhook,
// none of the webhooks in skip. A lease that runs out (its worker died)
// makes the delivery due again; the UPDATE's conditions, checked again on
// each locked row, keep two workers from claiming the same one.
func (s *Store) ClaimDeliveries(ctx context.Context, limit, perHook int, skip []string, lease time.Duration) ([]*WebhookDelivery, error) {
	ds, err := collectDeliveries(s.db.Query(ctx, `
		UPDATE webhook_deliveries w SET locked_until = now() + $4 * interval '1 millisecond'
		FROM (
			SELECT id FROM (
				SELECT d.id, d.next_at, row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_at) AS n
				FROM webhook_deliveries d
				WHERE d.status IN ('PENDING', 'FAILED') AND d.next_at <= now()
				  AND (d.locked_until IS NULL OR d.locked_until < now())
				  AND NOT (d.webhook_id = ANY(coalesce($3, ARRAY[]::text[])))
				  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
					WHERE e.webhook_id = d.webhook_id AND e.order_key = d.order_key
					  AND e.status IN ('PENDING', 'FAILED') AND (e.occurred_at, e.id) < (d.occurred_at, d.id))
			) heads WHERE n <= $2 ORDER BY next_at LIMIT $1
		) c
		WHERE w.id = c.id AND w.status IN ('PENDING', 'FAILED') AND (w.locked_until IS NULL OR w.locked_until < now())
		RETURNING `+deliveryColumnsOf("w"), limit, perHook, skip, lease.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("store: claim webhook deliveries: %w", err)
	}
	return ds, nil
}

// deliveryColumnsOf qualifies deliveryColumns with a table alias.
func deliveryColumnsOf(alias string) string {
	return alias + `.id, ` + alias + `.webhook_id, ` + alias + `.order_key, ` + alias + `.event_type, ` + alias + `.body, ` +
		alias + `.status, ` + alias + `.attempts, ` + alias + `.last_error, ` + alias + `.last_status, ` + alias + `.occurred_at, ` +
		alias + `.next_at, ` + alias + `.created_at, ` + alias + `.delivered_at`
}

// DeliveryOutcome is what one attempt of a delivery came to.
type DeliveryOutcome struct {
	// Status is the new status: DELIVERED, FAILED or PARKED.
	Status WebhookDeliveryStatus
	// HTTPStatus is the receiver's answer (0: none).
	HTTPStatus int
	Error      string
	// NextAt is when a FAILED delivery is tried again.
	NextAt time.Time
}

// FinishDelivery records an attempt of a claimed delivery and releases it.
func (s *Store) FinishDelivery(ctx context.Context, id uuid.UUID, o DeliveryOutcome) error {
	var httpStatus *int
	if o.HTTPStatus != 0 {
		httpStatus = &o.HTTPStatus
	}
	var lastErr *string
	if o.Error != "" {
		e := truncate(o.Error, 1000)
		lastErr = &e
	}
	next := o.NextAt
	if next.IsZero() {
		next = time.Now()
	}
	_, err := s.db.Exec(ctx, `
		UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status = coalesce($3, last_status),
			last_error = CASE WHEN $2 = 'DELIVERED' THEN last_error ELSE $4 END, next_at = $5, locked_until = NULL,
			delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() ELSE delivered_at END
		WHERE id = $1`, id, o.Status, httpStatus, lastErr, next)
	if err != nil {
		return fmt.Errorf("store: finish webhook delivery: %w", err)
	}
	return nil
}

// RedeliverWebhook makes a delivery due again now, with its attempts
// counted from zero. One in flight (leased) is a Conflict.
func (s *Store) RedeliverWebhook(ctx context.Context, id uuid.UUID) (*WebhookDelivery, error) {
	d, err := scanDelivery(s.db.QueryRow(ctx, `
		UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, next_at = now()
		WHERE id = $1 AND (locked_until IS NULL OR locked_until < now())
		RETURNING `+deliveryColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.WebhookDelivery(ctx, id); err != nil {
			return nil, err
		}
		return nil, Conflict("delivery %s is being delivered now", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: redeliver webhook: %w", err)
	}
	return d, nil
}

// WebhookDelivery reads one delivery.
func (s *Store) WebhookDelivery(ctx context.Context, id uuid.UUID) (*WebhookDelivery, error) {
	d, err := scanDelivery(s.db.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("webhook delivery", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: webhook delivery: %w", err)
	}
	return d, nil
}

// WebhookDeliveries lists a webhook's deliveries, newest first, optionally
// of one status; after is the id of the last one of the previous page.
func (s *Store) WebhookDeliveries(ctx context.Context, webhook string, status *WebhookDeliveryStatus, first int, after *uuid.UUID) (Page[*WebhookDelivery], error) {
	ds, err := collectDeliveries(s.db.Query(ctx, `
		SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id < $3)
		ORDER BY id DESC LIMIT $4`, webhook, status, after, first+1))
	if err != nil {
		return Page[*WebhookDelivery]{}, fmt.Errorf("store: webhook deliveries: %w", err)
	}
	return PageOf(ds, first), nil
}

// DeliveryCursor is a delivery's position in WebhookDeliveries.
func DeliveryCursor(d *WebhookDelivery) string { return d.ID.String() }

// DeleteDeliveredBefore deletes up to limit DELIVERED deliveries delivered
// before cutoff, oldest first, and returns how many it deleted. Deliveries
// that are pending, failing or parked are kept whatever their age: they
// are still work, or an admin's to look at.
func (s *Store) DeleteDeliveredBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := s.db.Exec(ctx, `
		DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE status = 'DELIVERED' AND delivered_at < $1
			ORDER BY delivered_at LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("store: delete delivered webhook deliveries: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
