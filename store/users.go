package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is a person using an app built on Brook. Its id is chosen by the app.
type User struct {
	ID         string
	Name       *string
	Image      *string
	Data       json.RawMessage
	Role       string
	LastActive *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Patch is an optional change to one field: when Set is false the field
// keeps its value; when Set is true it becomes Value (nil clears it).
type Patch[T any] struct {
	Set   bool
	Value *T
}

// UserChange is one user in an upsert. Fields not set keep their values.
type UserChange struct {
	ID    string
	Name  Patch[string]
	Image Patch[string]
	Data  Patch[json.RawMessage]
}

// Limits on user profile fields.
const (
	maxUserName  = 200
	maxUserImage = 2048
)

// Roles a user can have.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

const userColumns = `id, name, image, data, role, last_active, created_at, updated_at`

func scanUser(row pgx.Row) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.Image, &u.Data, &u.Role, &u.LastActive, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CheckUserChanges validates an upsert before anything is written.
func CheckUserChanges(users []UserChange) error {
	if len(users) == 0 {
		return Invalid("users", "give at least one user")
	}
	if len(users) > MaxBatch {
		return Invalid("users", "at most %d users per call, got %d", MaxBatch, len(users))
	}
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		field := fmt.Sprintf("users[%d]", i)
		if err := CheckUserID(field+".id", u.ID); err != nil {
			return err
		}
		if seen[u.ID] {
			return Invalid(field+".id", "user %q appears more than once", u.ID)
		}
		seen[u.ID] = true
		if u.Name.Value != nil {
			if err := CheckText(field+".name", *u.Name.Value, maxUserName); err != nil {
				return err
			}
		}
		if u.Image.Value != nil {
			if err := CheckText(field+".image", *u.Image.Value, maxUserImage); err != nil {
				return err
			}
		}
		if u.Data.Value != nil {
			if err := CheckData(field+".data", *u.Data.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// UpsertUsers creates or updates users in one transaction and returns them
// in input order. New users get the plain user role.
func (s *Store) UpsertUsers(ctx context.Context, users []UserChange) ([]*User, error) {
	if err := CheckUserChanges(users); err != nil {
		return nil, err
	}
	out := make([]*User, len(users))
	err := s.InTx(ctx, func(tx *Store) error {
		b := &pgx.Batch{}
		for _, u := range users {
			var data json.RawMessage
			if u.Data.Value != nil {
				data = *u.Data.Value
			}
			b.Queue(`
				INSERT INTO users AS u (id, name, image, data)
				VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO UPDATE SET
					name  = CASE WHEN $5 THEN excluded.name  ELSE u.name  END,
					image = CASE WHEN $6 THEN excluded.image ELSE u.image END,
					data  = CASE WHEN $7 THEN excluded.data  ELSE u.data  END,
					updated_at = now()
				RETURNING `+userColumns,
				u.ID, u.Name.Value, u.Image.Value, data, u.Name.Set, u.Image.Set, u.Data.Set)
		}
		res := tx.db.SendBatch(ctx, b)
		defer res.Close()
		for i := range users {
			u, err := scanUser(res.QueryRow())
			if err != nil {
				return err
			}
			out[i] = u
		}
		return res.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("store: upsert users: %w", err)
	}
	return out, nil
}

// UsersByID returns the users with the given ids, in the same order, with
// nil where a user does not exist.
func (s *Store) UsersByID(ctx context.Context, ids []string) ([]*User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: users by id: %w", err)
	}
	byID := make(map[string]*User, len(ids))
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: users by id: %w", err)
		}
		byID[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: users by id: %w", err)
	}
	out := make([]*User, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

// User returns one user, or a NotFound error.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err == pgx.ErrNoRows {
		return nil, NotFound("user", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: user: %w", err)
	}
	return u, nil
}

// AddUsersIfMissing creates the users that do not exist yet, with the
// names given, and leaves existing ones as they are (the demo users of
// dev mode).
func (s *Store) AddUsersIfMissing(ctx context.Context, names map[string]string) error {
	ids, labels := make([]string, 0, len(names)), make([]string, 0, len(names))
	for id, name := range names {
		ids, labels = append(ids, id), append(labels, name)
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO users (id, name) SELECT * FROM unnest($1::text[], $2::text[])
		ON CONFLICT (id) DO NOTHING`, ids, labels)
	if err != nil {
		return fmt.Errorf("store: add users: %w", err)
	}
	return nil
}

// TouchUser records that a signed-in user is active, creating the user with
// the given role on first use.
func (s *Store) TouchUser(ctx context.Context, id, role string) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO users (id, role, last_active) VALUES ($1, $2, now())
		ON CONFLICT (id) DO UPDATE SET last_active = now()`, id, role)
	if err != nil {
		return fmt.Errorf("store: touch user: %w", err)
	}
	return nil
}
