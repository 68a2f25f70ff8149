package ephemeral

import (
	"context"
	"fmt"
	"time"
)

// Read your own writes with read replicas: after a user's mutation the
// node marks the user for a window (the replicas' lag bound), shared by
// every node, and that user's reads stay on the primary while the mark
// lives. Other users' reads go on to the replicas.

func (s *State) wroteKey(userID string) string { return s.Key("wrote", userID) }

// MarkWrote records that userID has just written; the mark lasts window.
func (s *State) MarkWrote(ctx context.Context, userID string, window time.Duration) error {
	if err := s.rdb.Set(ctx, s.wroteKey(userID), 1, window).Err(); err != nil {
		return fmt.Errorf("ephemeral: mark write: %w", err)
	}
	return nil
}

// WroteRecently reports whether userID wrote within the window of its
// last MarkWrote.
func (s *State) WroteRecently(ctx context.Context, userID string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.wroteKey(userID)).Result()
	if err != nil {
		return false, fmt.Errorf("ephemeral: recent write: %w", err)
	}
	return n > 0, nil
}
