package ephemeral

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Unread counters: PostgreSQL holds the truth (see store/unread.go); Redis
// holds one hash per user so that reading a user's counts across 1,000
// channels is one round trip.
//
// The hash (chat:u:<user>) keeps, per channel, the highest sequence number
// counted (s:<channel>) and the read sequence number (r:<channel>): the
// channel's unread count is max(0, s - r). Both only ever grow, set with
// max(), so applying an update twice or out of order changes nothing: a
// retried job cannot double-count. The fields t and c keep the totals (sum
// of unread, channels with unread) for the notification events; ok marks
// the hash complete, gen counts invalidations, e is the epoch it was
// rebuilt in. A hash without ok, or of an older epoch (after a flush, an
// eviction, a restart, an invalidation, or a failed write), is rebuilt
// exactly from PostgreSQL by the next read.
//
// Channels above the push limit are not written per member: chat:seq:<id>
// holds their last_seq, and the user's chat:ub:<user> hash their read
// sequence numbers; reads compute those counts on the spot.

func (s *State) unreadKeys(user string) (h, ub string) {
	return s.Key("chat", "u", user), s.Key("chat", "ub", user)
}

// unreadLib is shared by the scripts below. complete says whether a
// user's hash lists every channel of the user exactly: rebuilt (ok) in the
// current epoch (see SettleUnread).
const unreadLib = `
local function complete(h, prefix)
  if redis.call('HEXISTS', h, 'ok') == 0 then return false end
  return (redis.call('HGET', h, 'e') or '0') == (redis.call('GET', prefix .. 'chat:epoch') or '0')
end
-- current says whether a hash is still of generation gen ('': any), for a
-- read position a job read from PostgreSQL after the generation.
local function current(h, gen)
  return gen == '' or (redis.call('HGET', h, 'gen') or '0') == gen
end
local function totals(h, ub, prefix)
  local t = tonumber(redis.call('HGET', h, 't') or '0')
  local c = tonumber(redis.call('HGET', h, 'c') or '0')
  local big = redis.call('HGETALL', ub)
  -- Fewer big channels than the rebuild wrote: the big hash was lost
  -- (evicted) on its own, and the totals are unknown until a rebuild.
  if #big / 2 < tonumber(redis.call('HGET', h, 'b') or '0') then return nil end
  for i = 1, #big, 2 do
    local s = tonumber(redis.call('GET', prefix .. 'chat:seq:' .. big[i]) or '0')
    local n = s - tonumber(big[i + 1])
    if n > 0 then t = t + n; c = c + 1 end
  end
  return t, c
end
-- readBig records a read position in a channel above the push limit.
-- Complete counters list every big channel of the user: one they do not
-- list is not the user's (a read or send that committed before a removal
-- must not put the channel back after the rebuild that dropped it).
local function readBig(h, ub, ch, seq, prefix)
  local cur = redis.call('HGET', ub, ch)
  if not cur and complete(h, prefix) then return end
  if tonumber(cur or '0') < seq then redis.call('HSET', ub, ch, seq) end
end
local function apply(h, ch, s1, r1, prefix)
  local fs, fr = 's:' .. ch, 'r:' .. ch
  local ok = complete(h, prefix)
  local v = redis.call('HMGET', h, fs, fr)
  -- A complete hash lists every channel of the user: one it does not
  -- list is not the user's (a job that read the members before a removal
  -- must not count the channel for the removed user).
  if ok and not v[1] then return ok end
  local s0, r0 = tonumber(v[1] or '0'), tonumber(v[2] or '0')
  local s, r = math.max(s0, s1), math.max(r0, r1)
  if s ~= s0 then redis.call('HSET', h, fs, s) end
  if r ~= r0 then redis.call('HSET', h, fr, r) end
  if ok then
    local old, new = math.max(0, s0 - r0), math.max(0, s - r)
    if old ~= new then redis.call('HINCRBY', h, 't', new - old) end
    if old == 0 and new > 0 then redis.call('HINCRBY', h, 'c', 1)
    elseif old > 0 and new == 0 then redis.call('HINCRBY', h, 'c', -1) end
  end
  return ok
end
`

// bumpScript counts a new top-level message for the members of a channel
// under the push limit. KEYS: per member its hash and big-channel hash.
// ARGV: channel, seq, the sender's member index (1-based, 0: none), key
// prefix, the sender's read position and the generation it holds for.
// Returns per member its totals, or -1 -1 when its hash is incomplete.
var bumpScript = redis.NewScript(unreadLib + `
local ch, seq, sender, prefix, read, gen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local out = {}
for i = 1, #KEYS / 2 do
  local h, ub = KEYS[2 * i - 1], KEYS[2 * i]
  local r = 0
  if i == sender and current(h, gen) then r = read end
  local t, c
  if apply(h, ch, seq, r, prefix) then t, c = totals(h, ub, prefix) end
  if t then
    out[#out + 1] = t; out[#out + 1] = c
  else
    out[#out + 1] = -1; out[#out + 1] = -1
  end
end
return out
`)

// bigSeqScript records the last_seq of a channel above the push limit,
// and the sender's read position. KEYS: seq key, sender's big hash,
// sender's hash. ARGV: channel, seq, key prefix, the sender's read
// position and the generation it holds for.
var bigSeqScript = redis.NewScript(unreadLib + `
local seq = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') < seq then redis.call('SET', KEYS[1], seq) end
if KEYS[2] ~= '' and current(KEYS[3], ARGV[5]) then readBig(KEYS[3], KEYS[2], ARGV[1], tonumber(ARGV[4]), ARGV[3]) end
return 1
`)

// markReadScript records a read position. KEYS: hash, big hash. ARGV:
// channel, seq, big (1/0), prefix, the generation the position holds for.
// Returns the totals, or -1 -1.
var markReadScript = redis.NewScript(unreadLib + `
local h, ub, ch, seq, prefix = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[4]
if not current(h, ARGV[5]) then return {-1, -1} end
local ok
if ARGV[3] == '1' then
  readBig(h, ub, ch, seq, prefix)
  ok = complete(h, prefix)
else
  ok = apply(h, ch, seq, seq, prefix)
end
if not ok then return {-1, -1} end
local t, c = totals(h, ub, prefix)
if not t then return {-1, -1} end
return {t, c}
`)

// bigReadScript reads a user's counts in channels above the push limit
// (computed from each channel's sequence key). KEYS: big hash, hash. ARGV:
// prefix. Returns {1, channel, n, ...} or, when a sequence key is missing
// or the big hash holds fewer channels than the rebuild wrote (field b of
// the hash: it was evicted), {0}, a rebuild being needed. The user's own hash is read with a plain
// HGETALL in the same MULTI: a script would convert all of its fields
// (two per channel) into Lua strings and back, several times the cost of
// the command itself.
var bigReadScript = redis.NewScript(`
local ub, h, prefix = KEYS[1], KEYS[2], ARGV[1]
local big = redis.call('HGETALL', ub)
if #big / 2 < tonumber(redis.call('HGET', h, 'b') or '0') then return {0} end
local out = {1}
for i = 1, #big, 2 do
  local sv = redis.call('GET', prefix .. 'chat:seq:' .. big[i])
  if not sv then return {0} end
  local n = tonumber(sv) - tonumber(big[i + 1])
  if n > 0 then out[#out + 1] = big[i]; out[#out + 1] = n end
end
return out
`)

// ReadUnread reads a user's unread counts from Redis in one round trip
// (MULTI: HGETALL of the user's hash, the big-channel script, EXEC).
// complete is false when the counters must be rebuilt first; gen is then
// what to rebuild against (RebuildUnread): the hash's generation and the
// epoch this read saw.
func (s *State) ReadUnread(ctx context.Context, user string) (counts []store.ChannelUnread, complete bool, gen string, err error) {
	h, ub := s.unreadKeys(user)
	var all *redis.MapStringStringCmd
	var big *redis.Cmd
	var epoch *redis.StringCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, h)
		big = bigReadScript.Eval(ctx, p, []string{ub, h}, s.prefix)
		epoch = p.Get(ctx, s.unreadEpochKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, "", err
	}
	fields := all.Val()
	bigRes, _ := big.Slice()
	if fields["ok"] == "" || len(bigRes) == 0 || bigRes[0] != int64(1) || cmp.Or(fields["e"], "0") != cmp.Or(epoch.Val(), "0") {
		return nil, false, cmp.Or(fields["gen"], "0") + "|" + cmp.Or(epoch.Val(), "0"), nil
	}
	read := make(map[string]int64, len(fields)/2)
	for k, v := range fields {
		if strings.HasPrefix(k, "r:") {
			read[k[2:]], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	counts = make([]store.ChannelUnread, 0, len(read)+len(bigRes)/2)
	for k, v := range fields {
		if !strings.HasPrefix(k, "s:") {
			continue
		}
		seq, _ := strconv.ParseInt(v, 10, 64)
		if n := seq - read[k[2:]]; n > 0 {
			counts = append(counts, store.ChannelUnread{ChannelID: k[2:], UserID: user, UnreadCount: int(n)})
		}
	}
	for i := 1; i+1 < len(bigRes); i += 2 {
		ch, _ := bigRes[i].(string)
		n, _ := bigRes[i+1].(int64)
		counts = append(counts, store.ChannelUnread{ChannelID: ch, UserID: user, UnreadCount: int(n)})
	}
	return counts, true, "", nil
}

// rebuildScript replaces a user's counters with PostgreSQL's, merged with
// max() into what Redis already has (every value in either place was
// committed, so the larger is the newer), unless the hash was invalidated
// or the epoch moved since the read that asked for it: PostgreSQL was read
// before a change whose counter write failed, and the result would be
// stamped complete without it. KEYS: hash, big hash. ARGV: prefix, gen,
// epoch, then per channel: id, last_seq, last_read_seq, big.
var rebuildScript = redis.NewScript(`
local h, ub, prefix = KEYS[1], KEYS[2], ARGV[1]
local gen = redis.call('HGET', h, 'gen') or '0'
if gen ~= ARGV[2] then return 0 end
local epoch = redis.call('GET', prefix .. 'chat:epoch') or '0'
if epoch ~= ARGV[3] then return 0 end
local old, oldub = {}, {}
local all = redis.call('HGETALL', h)
for i = 1, #all, 2 do old[all[i]] = tonumber(all[i + 1]) end
all = redis.call('HGETALL', ub)
for i = 1, #all, 2 do oldub[all[i]] = tonumber(all[i + 1]) end
redis.call('DEL', h, ub)
local t, c, b = 0, 0, 0
for i = 4, #ARGV, 4 do
  local ch, s, r = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if ARGV[i + 3] == '1' then
    b = b + 1
    redis.call('HSET', ub, ch, math.max(r, oldub[ch] or 0))
    local key = prefix .. 'chat:seq:' .. ch
    local cur = redis.call('GET', key)
    -- Set even at 0: a missing key means "rebuild", so a big channel
    -- with no message yet would send every read to PostgreSQL.
    if not cur or tonumber(cur) < s then redis.call('SET', key, s) end
  else
    local ss, rr = math.max(s, old['s:' .. ch] or 0), math.max(r, old['r:' .. ch] or 0)
    redis.call('HSET', h, 's:' .. ch, ss, 'r:' .. ch, rr)
    if ss > rr then t = t + ss - rr; c = c + 1 end
  end
end
redis.call('HSET', h, 't', t, 'c', c, 'b', b, 'gen', gen, 'ok', 1, 'e', epoch)
return 1
`)

func (s *State) unreadEpochKey() string { return s.Key("chat", "epoch") }

// unreadWriteFailed records that a write to the unread counters failed:
// Redis may lack a change PostgreSQL committed, so no counter may be
// trusted until SettleUnread has moved the epoch.
func (s *State) unreadWriteFailed() { s.unreadDirty.Add(1) }

// writeFailed follows a failed write to the counters of users (and to
// keys, which it deletes: a missing channel sequence key sends its
// readers to a rebuild). Invalidating just those keeps everyone else's
// counters; only when that fails too (Redis unreachable) must every
// counter wait for SettleUnread to move the epoch. The invalidation gets
// a worker's budget, not a request's: it outlasts a stall of Redis that
// failed the write, rather than send every user to PostgreSQL.
func (s *State) writeFailed(ctx context.Context, users []string, keys ...string) {
	ctx = redisguard.Background(ctx)
	if err := s.invalidate(ctx, users, keys); err != nil {
		s.unreadWriteFailed()
		// Settle now if Redis takes this write: other nodes must not serve
		// these users' counters until the epoch has moved. Otherwise the
		// next read or write of counters here, or the guard's recovery,
		// settles.
		_ = s.SettleUnread(ctx)
	}
}

// afterCommit is the context of a counter write, which follows a change
// PostgreSQL committed: the caller going away must not cut it short (the
// Redis guard's timeout still bounds it).
func afterCommit(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// SettleUnread makes every user's counters incomplete after a write to
// them failed (on this node), by moving the epoch that complete counters
// carry: each user's next read rebuilds them from PostgreSQL. It runs
// before this node next reads or writes counters, and when Redis answers
// again after the circuit opened, so that no counter missing a change is
// served once Redis is back. An error means the counters cannot be
// trusted yet: read PostgreSQL.
func (s *State) SettleUnread(ctx context.Context) error {
	seen := s.unreadDirty.Load()
	if seen == 0 {
		return nil
	}
	if err := s.rdb.Incr(ctx, s.unreadEpochKey()).Err(); err != nil {
		return fmt.Errorf("ephemeral: move the unread epoch: %w", err)
	}
	s.unreadDirty.CompareAndSwap(seen, 0)
	s.log.Info("chat: unread counters rebuild from PostgreSQL on their next read, after a failed write to Redis")
	return nil
}

// BumpUnread counts a new top-level message in Redis for the members of
// a channel under the push limit (and records the sender's read
// position, read, unless nil), in one round trip, and returns each
// member's new totals (unknown while a failed write is unsettled).
func (s *State) BumpUnread(ctx context.Context, channelID string, seq int64, members []string, read *store.ReadPosition) ([]store.UnreadTotals, error) {
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 2*len(members))
	senderIdx := 0
	var readSeq int64
	gen := ""
	for i, m := range members {
		h, ub := s.unreadKeys(m)
		keys = append(keys, h, ub)
		if read != nil && m == read.UserID {
			senderIdx, readSeq, gen = i+1, read.Seq, read.Gen
		}
	}
	ctx = afterCommit(ctx)
	// Write even if the epoch cannot move (Redis refusing writes refuses
	// this too), but trust no totals read back: the hash may have missed
	// the failed write.
	settled := s.SettleUnread(ctx) == nil
	res, err := bumpScript.Run(ctx, s.rdb, keys, channelID, seq, senderIdx, s.prefix, readSeq, gen).Int64Slice()
	if err != nil {
		s.writeFailed(ctx, members)
		return nil, fmt.Errorf("ephemeral: bump unread: %w", err)
	}
	out := make([]store.UnreadTotals, len(members))
	for i := range out {
		if t, c := res[2*i], res[2*i+1]; t >= 0 && settled {
			out[i] = store.UnreadTotals{Total: int(t), Channels: int(c), Known: true}
		}
	}
	return out, nil
}

// SetBigChannelSeq records the last_seq of a channel above the push limit
// and the sender's read position, read, unless nil.
func (s *State) SetBigChannelSeq(ctx context.Context, channelID string, seq int64, read *store.ReadPosition) error {
	h, ub := "", ""
	var users []string
	var readSeq int64
	gen := ""
	if read != nil {
		h, ub = s.unreadKeys(read.UserID)
		users = []string{read.UserID}
		readSeq, gen = read.Seq, read.Gen
	}
	ctx = afterCommit(ctx)
	seqKey := s.Key("chat", "seq", channelID)
	if err := bigSeqScript.Run(ctx, s.rdb, []string{seqKey, ub, h}, channelID, seq, s.prefix, readSeq, gen).Err(); err != nil {
		s.writeFailed(ctx, users, seqKey)
		return fmt.Errorf("ephemeral: big channel seq: %w", err)
	}
	return nil
}

// RecordRead moves a user's read position in Redis after MarkRead
// committed (with p.Gen set, only while the counters are of that
// generation), and returns the user's new totals (unknown while a failed
// write is unsettled, as for BumpUnread).
func (s *State) RecordRead(ctx context.Context, p *store.ReadPosition) (store.UnreadTotals, error) {
	h, ub := s.unreadKeys(p.UserID)
	big := "0"
	if p.Big {
		big = "1"
	}
	ctx = afterCommit(ctx)
	settled := s.SettleUnread(ctx) == nil
	res, err := markReadScript.Run(ctx, s.rdb, []string{h, ub}, p.ChannelID, p.Seq, big, s.prefix, p.Gen).Int64Slice()
	if err != nil {
		s.writeFailed(ctx, []string{p.UserID})
		return store.UnreadTotals{}, fmt.Errorf("ephemeral: record read: %w", err)
	}
	if res[0] < 0 || !settled {
		return store.UnreadTotals{}, nil
	}
	return store.UnreadTotals{Total: int(res[0]), Channels: int(res[1]), Known: true}, nil
}

// UnreadGen returns the generation of a user's counters, which every
// invalidation and discard moves: a read position read from PostgreSQL
// after it may be recorded with it (ReadPosition.Gen), and is then
// dropped if the counters were invalidated or discarded meanwhile.
func (s *State) UnreadGen(ctx context.Context, user string) (string, error) {
	h, _ := s.unreadKeys(user)
	gen, err := s.rdb.HGet(ctx, h, "gen").Result()
	if errors.Is(err, redis.Nil) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("ephemeral: unread generation: %w", err)
	}
	return gen, nil
}

// InvalidateUnread marks users' counters incomplete, so the next read
// rebuilds them from PostgreSQL (after membership changes).
func (s *State) InvalidateUnread(ctx context.Context, users []string) error {
	ctx = afterCommit(ctx)
	if err := s.invalidate(ctx, users, nil); err != nil {
		s.unreadWriteFailed()
		return fmt.Errorf("ephemeral: invalidate unread: %w", err)
	}
	return nil
}

// invalidate marks users' counters incomplete and deletes keys, in one
// MULTI: a rebuild that read PostgreSQL before the change must not write
// between a user's two commands, where it found its gen still current,
// wrote the old memberships and set ok again after it was cleared.
func (s *State) invalidate(ctx context.Context, users, keys []string) error {
	if len(users) == 0 && len(keys) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range users {
			h, _ := s.unreadKeys(u)
			p.HIncrBy(ctx, h, "gen", 1)
			p.HDel(ctx, h, "ok")
		}
		if len(keys) > 0 {
			p.Del(ctx, keys...)
		}
		return nil
	})
	return err
}

// RebuildUnread replaces a user's counters with the memberships read from
// PostgreSQL after ReadUnread returned gen (see rebuildScript); channels
// above pushLimit members are big.
func (s *State) RebuildUnread(ctx context.Context, user, gen string, rows []store.UnreadRow, pushLimit int) error {
	h, ub := s.unreadKeys(user)
	g, epoch, ok := strings.Cut(gen, "|")
	if !ok {
		return fmt.Errorf("ephemeral: rebuild unread: %q is not what ReadUnread returned", gen)
	}
	args := make([]any, 0, 3+4*len(rows))
	args = append(args, s.prefix, g, epoch)
	for _, r := range rows {
		big := "0"
		if r.Members > pushLimit {
			big = "1"
		}
		args = append(args, r.Channel, r.LastSeq, r.Read, big)
	}
	return rebuildScript.Run(ctx, s.rdb, []string{h, ub}, args...).Err()
}

var discardScript = redis.NewScript(`
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'gen', gen)
return 1
`)

// DiscardUnread throws drifted counters away. Invalidating them is not
// enough: a rebuild keeps the larger of each Redis and PostgreSQL value
// (a larger one in Redis is normally newer), so a value that drifted too
// high would survive it. What workers write after the discard is newer
// than the rebuild's read, and is kept.
func (s *State) DiscardUnread(ctx context.Context, users []string) error {
	for _, u := range users {
		h, ub := s.unreadKeys(u)
		if err := discardScript.Run(ctx, s.rdb, []string{h, ub}).Err(); err != nil {
			s.unreadWriteFailed()
			return fmt.Errorf("ephemeral: discard unread: %w", err)
		}
	}
	return nil
}
