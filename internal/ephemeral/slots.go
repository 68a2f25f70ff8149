package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
)

// Hash slots. A Redis Cluster refuses a script, MULTI or multi-key command
// whose keys lie in more than one of its 16,384 hash slots. Keys that one
// operation needs together carry the same hash tag (the part between the
// first { and the next }): {u:<id>} for a user's unread counters, {c:<id>}
// for a channel's sequence key, the budget's owner for rate limits. Work
// that spans many tags (a message's unread increments to every member) is
// split by slot, one script call per slot, all in one pipeline: go-redis's
// cluster pipeline sends each master the calls of its slots at once, so a
// message still costs one round trip per master, and one on a single
// Redis, where everything is one group as before.

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// Slot returns the hash slot of a Redis key as Redis Cluster computes it:
// CRC16 (XMODEM) of the key's hash tag, or of the whole key when it has
// none, modulo 16,384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % slotCount)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), bit by
// bit: Brook hashes a few keys per operation, where a table buys nothing.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Cluster reports whether the client is a Redis Cluster client, whose
// scripts may touch only the keys they are given, all in one slot.
func (s *State) Cluster() bool {
	_, ok := s.rdb.(*redis.ClusterClient)
	return ok
}

// bySlot splits the indexes 0..n-1 into groups whose keys (key(i)) share
// a hash slot, each group in index order, groups in order of their first
// index. On a single Redis every index is in one group: any script may
// take any keys there, and one call is cheaper than many.
func (s *State) bySlot(n int, key func(int) string) [][]int {
	if n == 0 {
		return nil
	}
	if !s.Cluster() {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	var groups [][]int
	at := make(map[int]int)
	for i := range n {
		sl := Slot(key(i))
		g, ok := at[sl]
		if !ok {
			g = len(groups)
			at[sl] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// mget reads keys in one round trip: MGET on a single Redis, one GET per
// key in a cluster pipeline (MGET's keys would have to share a slot).
// Missing keys are nil.
func (s *State) mget(ctx context.Context, keys []string) ([]any, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if !s.Cluster() {
		return s.rdb.MGet(ctx, keys...).Result()
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("ephemeral: get %d keys: %w", len(keys), err)
	}
	out := make([]any, len(keys))
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			out[i] = v
		}
	}
	return out, nil
}

// del queues the deletion of keys on p: one DEL on a single Redis, one
// per key in a cluster.
func (s *State) del(ctx context.Context, p redis.Pipeliner, keys []string) {
	if len(keys) == 0 {
		return
	}
	if !s.Cluster() {
		p.Del(ctx, keys...)
		return
	}
	for _, k := range keys {
		p.Del(ctx, k)
	}
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// NewOnClient returns a State on a client the caller made, such as a
// *redis.ClusterClient, for benchmarks and tests that run the state on a
// Redis Cluster. The guard watches no client there (it pings one server);
// Close closes rdb.
func NewOnClient(rdb redis.UniversalClient, opts Options) *State {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	guard := redisguard.New(redisguard.Options{Timeout: opts.Timeout, Logger: logger, Registerer: opts.Registerer})
	return &State{rdb: rdb, prefix: opts.Prefix, log: logger, guard: guard}
}

// scriptCall is one call of a script: its keys (one slot) and arguments.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs calls in one pipeline, by EVALSHA, after the commands
// extra queues (nil: none). A call that finds its script missing on its
// server (restarted, failed over, new in the cluster) has not run: those
// calls, and only those, run again once their scripts are loaded (on
// every master of a cluster), in a second round trip, so that no call
// runs twice. A pipeline cannot fall back to EVAL as Script.Run does, and
// sending a script's text with each call would cost a 1,000-member
// channel a megabyte per message in a cluster. The error is the first
// failed command's; every command's own is in its reply.
func (s *State) runScripts(ctx context.Context, calls []scriptCall, extra func(redis.Pipeliner)) ([]*redis.Cmd, error) {
	out := make([]*redis.Cmd, len(calls))
	run := func(idx []int, extra func(redis.Pipeliner)) error {
		p := s.rdb.Pipeline()
		if extra != nil {
			extra(p)
		}
		for _, i := range idx {
			c := calls[i]
			out[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		_, err := p.Exec(ctx)
		if isNil(err) {
			err = nil
		}
		return err
	}
	all := make([]int, len(calls))
	for i := range all {
		all[i] = i
	}
	err := run(all, extra)
	var missing []int
	loaded := map[*redis.Script]bool{}
	for i, c := range out {
		if !redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			continue
		}
		missing = append(missing, i)
		if sc := calls[i].script; !loaded[sc] {
			loaded[sc] = true
			if lerr := sc.Load(ctx, s.rdb).Err(); lerr != nil {
				return out, fmt.Errorf("ephemeral: load script: %w", lerr)
			}
		}
	}
	if len(missing) == 0 {
		return out, err
	}
	// The extra commands come first: an error of theirs is the first.
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = nil
	}
	if rerr := run(missing, nil); err == nil {
		err = rerr
	}
	if err == nil {
		for _, c := range out {
			if c.Err() != nil && !isNil(c.Err()) {
				return out, c.Err()
			}
		}
	}
	return out, err
}

// checkPrefix refuses a key prefix with a brace: Redis Cluster would take
// the hash tag from the prefix instead of the key's own, and split keys
// that must share a slot.
func checkPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("ephemeral: the Redis key prefix %q has a brace; Brook's keys carry their own hash tags", prefix)
	}
	return nil
}
