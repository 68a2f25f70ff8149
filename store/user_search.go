package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxUserQuery caps a searchUsers query, in characters.
const maxUserQuery = 100

// userSearchKey is the expression searchUsers matches and orders by.
const userSearchKey = `(lower(coalesce(name, id)) COLLATE "C")`

// SearchUsers lists users whose display name (their id when they have
// none) starts with prefix, case-insensitive as the database's lower()
// is, in that name's order, first+1 rows after the user whose id is the
// cursor ("" for the start).
func (s *Store) SearchUsers(ctx context.Context, prefix string, first int, after string) (Page[*User], error) {
	if err := CheckText("query", prefix, maxUserQuery); err != nil {
		return Page[*User]{}, err
	}
	prefix = strings.TrimSpace(prefix)
	if prefix == "" {
		return Page[*User]{}, Invalid("query", "must not be empty: give the first letters of a name")
	}
	// U+10FFFF is the largest character: every string with the prefix
	// sorts below prefix+U+10FFFF in the C collation.
	rows, err := s.reader(ctx).Query(ctx, `
		SELECT `+userColumns+` FROM users
		WHERE `+userSearchKey+` >= lower($1) COLLATE "C" AND `+userSearchKey+` < (lower($1) || $2) COLLATE "C"
		  AND ($3 = '' OR (`+userSearchKey+`, id) > (SELECT `+userSearchKey+`, id FROM users WHERE id = $3))
		ORDER BY `+userSearchKey+`, id LIMIT $4`, prefix, "\U0010FFFF", after, first+1)
	if err != nil {
		return Page[*User]{}, fmt.Errorf("store: search users: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*User, error) { return scanUser(r) })
	if err != nil {
		return Page[*User]{}, fmt.Errorf("store: search users: %w", err)
	}
	return PageOf(found, first), nil
}

// UserCursor is a user's position in SearchUsers: its id.
func UserCursor(u *User) string { return u.ID }
