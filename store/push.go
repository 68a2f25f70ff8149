package store

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PushProvider is the push service a device's token belongs to.
type PushProvider string

// The push providers (the GraphQL enum's values).
const (
	PushFCM     PushProvider = "FCM"
	PushAPNS    PushProvider = "APNS"
	PushWebPush PushProvider = "WEBPUSH"
)

// MarshalGQL writes the provider as its GraphQL enum value.
func (p PushProvider) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(p))) }

// UnmarshalGQL reads a GraphQL enum value.
func (p *PushProvider) UnmarshalGQL(v any) error {
	return UnmarshalEnum(p, v, "provider", "push provider", PushFCM, PushAPNS, PushWebPush)
}

// PushDevice is one app install's token at one push provider.
type PushDevice struct {
	ID       uuid.UUID    `json:"id"`
	UserID   string       `json:"user"`
	Provider PushProvider `json:"provider"`
	Token    string       `json:"token"`
	Name     *string      `json:"name,omitempty"`
	// VoIP marks an APNs PushKit token: it gets rings only.
	VoIP bool `json:"voip"`
	// DeliveredThrough is the highest pending push id sent to it.
	DeliveredThrough int64     `json:"-"`
	RegisteredAt     time.Time `json:"registeredAt"`
}

const pushDeviceColumns = `id, user_id, provider, token, name, voip, delivered_through, registered_at`

func scanPushDevice(row pgx.CollectableRow) (*PushDevice, error) {
	var d PushDevice
	err := row.Scan(&d.ID, &d.UserID, &d.Provider, &d.Token, &d.Name, &d.VoIP, &d.DeliveredThrough, &d.RegisteredAt)
	return &d, err
}

// AddPushDevice registers d's token for d.UserID, or, when the token is
// registered already, gives it to d.UserID (a token that moves to another
// user starts its delivery record afresh). The user's devices beyond limit,
// oldest registration first, are removed; it returns the device and the
// ids removed.
func (s *Store) AddPushDevice(ctx context.Context, d PushDevice, limit int) (*PushDevice, []uuid.UUID, error) {
	var out *PushDevice
	var dropped []uuid.UUID
	err := s.InTx(ctx, func(tx *Store) error {
		rows, err := tx.db.Query(ctx, `
			INSERT INTO push_devices (id, user_id, provider, token, name, voip) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (provider, token) DO UPDATE SET user_id = excluded.user_id, name = excluded.name,
				voip = excluded.voip, registered_at = now(),
				delivered_through = CASE WHEN push_devices.user_id = excluded.user_id THEN push_devices.delivered_through ELSE 0 END
			RETURNING `+pushDeviceColumns, NewID(), d.UserID, d.Provider, d.Token, d.Name, d.VoIP)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectExactlyOneRow(rows, scanPushDevice); err != nil {
			return err
		}
		rows, err = tx.db.Query(ctx, `
			DELETE FROM push_devices WHERE id IN (
				SELECT id FROM push_devices WHERE user_id = $1 ORDER BY registered_at DESC, id DESC OFFSET $2)
			RETURNING id`, d.UserID, limit)
		if err != nil {
			return err
		}
		dropped, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: add push device: %w", err)
	}
	return out, dropped, nil
}

// RemovePushDevice removes the user's device with the given id, or with
// the given token (either may be empty). It reports whether there was one.
func (s *Store) RemovePushDevice(ctx context.Context, user string, id *uuid.UUID, token string) (bool, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM push_devices WHERE user_id = $1 AND (id = $2 OR token = $3)`, user, id, token)
	if err != nil {
		return false, fmt.Errorf("store: remove push device: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeletePushDevice removes a device a provider reported invalid.
func (s *Store) DeletePushDevice(ctx context.Context, id uuid.UUID) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM push_devices WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete push device: %w", err)
	}
	return nil
}

// PushDevices lists users' devices, newest registration first.
func (s *Store) PushDevices(ctx context.Context, users []string) ([]*PushDevice, error) {
	rows, err := s.db.Query(ctx, `SELECT `+pushDeviceColumns+` FROM push_devices WHERE user_id = ANY($1)
		ORDER BY user_id, registered_at DESC, id DESC`, users)
	if err != nil {
		return nil, fmt.Errorf("store: push devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanPushDevice)
	if err != nil {
		return nil, fmt.Errorf("store: push devices: %w", err)
	}
	return out, nil
}

// UsersWithPushDevices returns those of users who have a device.
func (s *Store) UsersWithPushDevices(ctx context.Context, users []string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT user_id FROM push_devices WHERE user_id = ANY($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("store: users with push devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: users with push devices: %w", err)
	}
	return out, nil
}

// MarkPushDelivered records that a device was sent the pending pushes up
// to through. It is written at once, outside any job's transaction: a job
// that fails later must not send this device the same push again.
func (s *Store) MarkPushDelivered(ctx context.Context, device uuid.UUID, through int64) error {
	_, err := s.db.Exec(ctx, `UPDATE push_devices SET delivered_through = greatest(delivered_through, $2) WHERE id = $1`, device, through)
	if err != nil {
		return fmt.Errorf("store: mark push delivered: %w", err)
	}
	return nil
}

// PushPending is one event waiting to be pushed to a user.
type PushPending struct {
	ID        int64
	UserID    string
	Kind      string
	ChannelID *string
	MessageID *uuid.UUID
	CallID    *string
	Actor     *string
	Title     string
	Body      string
	CreatedAt time.Time
}

// AddPushPending writes pending pushes, one statement for all of them.
func (s *Store) AddPushPending(ctx context.Context, ps []PushPending) error {
	if len(ps) == 0 {
		return nil
	}
	n := len(ps)
	users, kinds, titles, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	channels, calls, actors := make([]*string, n), make([]*string, n), make([]*string, n)
	messages := make([]*uuid.UUID, n)
	for i, p := range ps {
		users[i], kinds[i], titles[i], bodies[i] = p.UserID, p.Kind, p.Title, p.Body
		channels[i], calls[i], actors[i], messages[i] = p.ChannelID, p.CallID, p.Actor, p.MessageID
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO push_pending (user_id, kind, channel_id, message_id, call_id, actor, title, body)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[])`,
		users, kinds, channels, messages, calls, actors, titles, bodies)
	if err != nil {
		return fmt.Errorf("store: add pending pushes: %w", err)
	}
	return nil
}

// ClaimPushPending locks and returns the pending pushes of users, oldest
// first. Rows another push job holds are skipped: that job sends them.
func (s *Store) ClaimPushPending(ctx context.Context, users []string) ([]PushPending, error) {
	rows, err := s.db.Query(ctx, `
		SELECT id, user_id, kind, channel_id, message_id, call_id, actor, title, body, created_at
		FROM push_pending WHERE user_id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED`, users)
	if err != nil {
		return nil, fmt.Errorf("store: claim pending pushes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PushPending, error) {
		var p PushPending
		err := row.Scan(&p.ID, &p.UserID, &p.Kind, &p.ChannelID, &p.MessageID, &p.CallID, &p.Actor, &p.Title, &p.Body, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim pending pushes: %w", err)
	}
	return out, nil
}

// DeletePushPending removes pending pushes that were sent (or need not be).
func (s *Store) DeletePushPending(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM push_pending WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("store: delete pending pushes: %w", err)
	}
	return nil
}
