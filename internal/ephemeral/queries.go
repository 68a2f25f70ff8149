package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// persistedQueryTTL is how long an automatic persisted query is remembered
// after it was last registered. Clients re-register a query they find missing.
const persistedQueryTTL = 7 * 24 * time.Hour

// PersistedQuery returns the query text registered under a SHA-256 hash by
// automatic persisted queries (APQ), shared by every node through Redis.
func (s *State) PersistedQuery(ctx context.Context, hash string) (string, bool, error) {
	q, err := s.rdb.Get(ctx, s.Key("apq", hash)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ephemeral: persisted query: %w", err)
	}
	return q, true, nil
}

// SavePersistedQuery registers query text under its hash.
func (s *State) SavePersistedQuery(ctx context.Context, hash, query string) error {
	if err := s.rdb.Set(ctx, s.Key("apq", hash), query, persistedQueryTTL).Err(); err != nil {
		return fmt.Errorf("ephemeral: save persisted query: %w", err)
	}
	return nil
}
