package ephemeral

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Presence lives only in Redis: a sorted set per user whose members are the
// user's open connections, scored by the time each one's lease runs out.
// A node refreshes the leases of its connections; a crashed node's leases
// simply expire, so no cleanup is needed for a user to go offline.

func (s *State) presenceKey(userID string) string { return s.Key("presence", userID) }

// MarkOnline records that connection connID of a user is open until until.
// It reports whether the user was offline before.
func (s *State) MarkOnline(ctx context.Context, userID, connID string, until time.Time) (bool, error) {
	key := s.presenceKey(userID)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var before *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		before = p.ZCount(ctx, key, now, "+inf")
		p.ZAdd(ctx, key, redis.Z{Score: float64(until.UnixMilli()), Member: connID})
		p.ZRemRangeByScore(ctx, key, "-inf", "("+now)
		p.PExpireAt(ctx, key, until)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ephemeral: mark online: %w", err)
	}
	return before.Val() == 0, nil
}

// MarkOffline records that connection connID of a user has closed. It
// reports whether the user has no open connection left.
func (s *State) MarkOffline(ctx context.Context, userID, connID string) (bool, error) {
	key := s.presenceKey(userID)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var left *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, key, connID)
		left = p.ZCount(ctx, key, now, "+inf")
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("ephemeral: mark offline: %w", err)
	}
	return left.Val() == 0, nil
}

// Online reports, for each user id, whether the user has an open connection.
// All users are looked up in one Redis round trip.
func (s *State) Online(ctx context.Context, userIDs []string) ([]bool, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmds := make([]*redis.IntCmd, len(userIDs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range userIDs {
			cmds[i] = p.ZCount(ctx, s.presenceKey(id), now, "+inf")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ephemeral: online: %w", err)
	}
	out := make([]bool, len(userIDs))
	for i, c := range cmds {
		out[i] = c.Val() > 0
	}
	return out, nil
}

// RefreshPresence extends the leases of open connections (connection id to
// user id) until until, in one pipeline. It also restores entries Redis lost.
func (s *State) RefreshPresence(ctx context.Context, conns map[string]string, until time.Time) error {
	if len(conns) == 0 {
		return nil
	}
	score := float64(until.UnixMilli())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for connID, userID := range conns {
			key := s.presenceKey(userID)
			p.ZAdd(ctx, key, redis.Z{Score: score, Member: connID})
			p.PExpireAt(ctx, key, until)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ephemeral: refresh presence: %w", err)
	}
	return nil
}

// OpenConnections returns how many connections a user has open, on all nodes.
func (s *State) OpenConnections(ctx context.Context, userID string) (int, error) {
	n, err := s.rdb.ZCount(ctx, s.presenceKey(userID), strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("ephemeral: open connections: %w", err)
	}
	return int(n), nil
}
