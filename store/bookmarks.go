package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxFolderLen caps a bookmark folder's name, in characters.
const maxFolderLen = 64

// Bookmark is an activity a user saved, in one of their folders ("" is
// the default folder).
type Bookmark struct {
	ID        uuid.UUID
	UserID    string
	Folder    string
	Activity  *Activity
	CreatedAt time.Time
}

// CheckFolder checks a bookmark folder's name: at most 64 characters, ""
// for the default folder.
func CheckFolder(field, folder string) error { return CheckText(field, folder, maxFolderLen) }

// AddBookmark saves a in the user's folder. Saving it there again returns
// the existing bookmark and writes nothing.
func (s *Store) AddBookmark(ctx context.Context, userID, folder string, a *Activity) (*Bookmark, error) {
	b := &Bookmark{UserID: userID, Folder: folder, Activity: a}
	err := s.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO bookmarks (id, user_id, folder, activity_id) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, folder, activity_id) DO NOTHING RETURNING id, created_at)
		SELECT id, created_at FROM ins
		UNION ALL SELECT id, created_at FROM bookmarks WHERE user_id = $2 AND folder = $3 AND activity_id = $4
		LIMIT 1`, NewID(), userID, folder, a.ID).Scan(&b.ID, &b.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent save committed between the two reads: read it now.
		err = s.db.QueryRow(ctx, `SELECT id, created_at FROM bookmarks WHERE user_id = $1 AND folder = $2 AND activity_id = $3`,
			userID, folder, a.ID).Scan(&b.ID, &b.CreatedAt)
	}
	if err != nil {
		return nil, fmt.Errorf("store: add bookmark: %w", err)
	}
	return b, nil
}

// RemoveBookmarks removes the user's bookmarks of an activity, from one
// folder or (nil) from every folder, and returns how many it removed.
func (s *Store) RemoveBookmarks(ctx context.Context, userID string, activityID uuid.UUID, folder *string) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM bookmarks WHERE user_id = $1 AND activity_id = $2 AND ($3::text IS NULL OR folder = $3)`,
		userID, activityID, folder)
	if err != nil {
		return 0, fmt.Errorf("store: remove bookmarks: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Bookmarks returns up to limit of the user's bookmarks, newest first,
// from one folder or (nil) from all, with ids below before (uuid.Nil: from
// the newest). Bookmarks of removed activities are left out.
func (s *Store) Bookmarks(ctx context.Context, userID string, folder *string, before uuid.UUID, limit int) ([]*Bookmark, error) {
	if before == uuid.Nil {
		before = maxID
	}
	rows, err := s.reader(ctx).Query(ctx, `SELECT b.id, b.folder, b.created_at, `+activityColumnsA+`
		FROM bookmarks b JOIN activities a ON a.id = b.activity_id
		WHERE b.user_id = $1 AND ($2::text IS NULL OR b.folder = $2) AND b.id < $3
		ORDER BY b.id DESC LIMIT $4`, userID, folder, before, limit)
	if err != nil {
		return nil, fmt.Errorf("store: bookmarks: %w", err)
	}
	marks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Bookmark, error) {
		var b Bookmark
		var a Activity
		err := row.Scan(append([]any{&b.ID, &b.Folder, &b.CreatedAt}, a.dest()...)...)
		b.UserID, b.Activity = userID, &a
		return &b, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: bookmarks: %w", err)
	}
	return marks, nil
}
