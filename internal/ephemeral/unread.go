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
// The hash (chat:u:{u:<user>}) keeps, per channel, the highest sequence number
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
// Channels above the push limit are not written per member: chat:seq:{c:<id>}
// holds their last_seq, and the user's chat:ub:{u:<user>} hash their read
// sequence numbers; reads compute those counts on the spot.

func (s *State) unreadKeys(user string) (h, ub string) {
	tag := "{u:" + user + "}"
	return s.Key("chat", "u", tag), s.Key("chat", "ub", tag)
}

// seqKey is the sequence key of a channel above the push limit; its tag
// is the channel's, as unreadLib's seqKey spells it.
func (s *State) seqKey(channelID string) string { return s.Key("chat", "seq", "{c:"+channelID+"}") }

// solo is the scripts' second argument: "1" on a single Redis, where they
// may read keys they were not given (the epoch, big channels' sequence
// keys), "0" in a cluster, where those lie in other slots.
func (s *State) solo() string {
	if s.Cluster() {
		return "0"
	}
	return "1"
}

// unreadLib is shared by the scripts below, whose first two arguments are
// the key prefix and solo. complete says whether a user's hash lists
// every channel of the user exactly: rebuilt (ok) in the current epoch
// (see SettleUnread). In a cluster the epoch key lies in another slot:
// complete checks ok only, and the caller compares the hash's epoch, which
// the scripts return with its totals, with the epoch read in the same
// pipeline. A hash of an older epoch taken for complete there only skips
// channels it does not list and keeps its totals, and the rebuild its
// next read starts redoes both.
const unreadLib = `
local prefix, solo = ARGV[1], ARGV[2] == '1'
local function seqKey(ch) return prefix .. 'chat:seq:{c:' .. ch .. '}' end
local function complete(h)
  if redis.call('HEXISTS', h, 'ok') == 0 then return false end
  if not solo then return true end
  return (redis.call('HGET', h, 'e') or '0') == (redis.call('GET', prefix .. 'chat:epoch') or '0')
end
local function epoch(h) return tonumber(redis.call('HGET', h, 'e') or '0') end
-- current says whether a hash is still of generation gen ('': any), for a
-- read position a job read from PostgreSQL after the generation.
local function current(h, gen)
  return gen == '' or (redis.call('HGET', h, 'gen') or '0') == gen
end
local function totals(h, ub)
  local t = tonumber(redis.call('HGET', h, 't') or '0')
  local c = tonumber(redis.call('HGET', h, 'c') or '0')
  local big = redis.call('HGETALL', ub)
  -- Fewer big channels than the rebuild wrote: the big hash was lost
  -- (evicted) on its own, and the totals are unknown until a rebuild.
  if #big / 2 < tonumber(redis.call('HGET', h, 'b') or '0') then return nil end
  -- Big channels' counts need their sequence keys, which lie in other
  -- slots of a cluster: unknown there (the caller reads PostgreSQL).
  if #big > 0 and not solo then return nil end
  for i = 1, #big, 2 do
    local s = tonumber(redis.call('GET', seqKey(big[i])) or '0')
    local n = s - tonumber(big[i + 1])
    if n > 0 then t = t + n; c = c + 1 end
  end
  return t, c
end
-- readBig records a read position in a channel above the push limit.
-- Complete counters list every big channel of the user: one they do not
-- list is not the user's (a read or send that committed before a removal
-- must not put the channel back after the rebuild that dropped it).
local function readBig(h, ub, ch, seq)
  local cur = redis.call('HGET', ub, ch)
  if not cur and complete(h) then return end
  if tonumber(cur or '0') < seq then redis.call('HSET', ub, ch, seq) end
end
local function apply(h, ch, s1, r1)
  local fs, fr = 's:' .. ch, 'r:' .. ch
  local ok = complete(h)
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

// bumpScript counts a new top-level message for members of a channel
// under the push limit, all of one slot in a cluster. KEYS: per member its
// hash and big-channel hash. ARGV: prefix, solo, channel, seq, the
// sender's member index (1-based, 0: none), the sender's read position
// and the generation it holds for. Returns per member its totals (-1 -1
// when its hash is incomplete) and its hash's epoch.
var bumpScript = redis.NewScript(unreadLib + `
local ch, seq, sender, read, gen = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local out = {}
for i = 1, #KEYS / 2 do
  local h, ub = KEYS[2 * i - 1], KEYS[2 * i]
  local r = 0
  if i == sender and current(h, gen) then r = read end
  local t, c
  if apply(h, ch, seq, r) then t, c = totals(h, ub) end
  if t then
    out[#out + 1] = t; out[#out + 1] = c
  else
    out[#out + 1] = -1; out[#out + 1] = -1
  end
  out[#out + 1] = epoch(h)
end
return out
`)

// setMaxScript raises a channel's sequence key to ARGV[1], setting it
// when missing (even at 0: a missing key means "rebuild", so a big
// channel with no message yet would send every read to PostgreSQL).
var setMaxScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`)

// readBigScript records a user's read position in a channel above the
// push limit, while the counters are of the generation it holds for.
// KEYS: hash, big hash. ARGV: prefix, solo, channel, seq, generation.
var readBigScript = redis.NewScript(unreadLib + `
if current(KEYS[1], ARGV[5]) then readBig(KEYS[1], KEYS[2], ARGV[3], tonumber(ARGV[4])) end
return 1
`)

// markReadScript records a read position. KEYS: hash, big hash. ARGV:
// prefix, solo, channel, seq, big (1/0), the generation the position
// holds for. Returns the totals, or -1 -1, and the hash's epoch.
var markReadScript = redis.NewScript(unreadLib + `
local h, ub, ch, seq = KEYS[1], KEYS[2], ARGV[3], tonumber(ARGV[4])
if not current(h, ARGV[6]) then return {-1, -1, 0} end
local ok
if ARGV[5] == '1' then
  readBig(h, ub, ch, seq)
  ok = complete(h)
else
  ok = apply(h, ch, seq, seq)
end
if not ok then return {-1, -1, 0} end
local t, c = totals(h, ub)
if not t then return {-1, -1, 0} end
return {t, c, epoch(h)}
`)

// bigReadScript reads a user's counts in channels above the push limit.
// KEYS: big hash, hash. ARGV: prefix, solo. Returns {status, gen, ...}
// with the hash's generation: status 1 on a single Redis, followed by
// channel, count pairs computed from each channel's sequence key; 2 in a
// cluster, followed by channel, read position pairs (the caller reads the
// sequence keys, in other slots); 0 when a sequence key is missing or the
// big hash holds fewer channels than the rebuild wrote (field b of the
// hash: it was evicted), a rebuild being needed. The user's own hash is
// read with a plain HGETALL beside it: a script would convert all of its
// fields (two per channel) into Lua strings and back, several times the
// cost of the command itself.
var bigReadScript = redis.NewScript(`
local ub, h, prefix, solo = KEYS[1], KEYS[2], ARGV[1], ARGV[2] == '1'
local big = redis.call('HGETALL', ub)
local gen = redis.call('HGET', h, 'gen') or '0'
if #big / 2 < tonumber(redis.call('HGET', h, 'b') or '0') then return {0, gen} end
if not solo then
  local out = {2, gen}
  for i = 1, #big do out[#out + 1] = big[i] end
  return out
end
local out = {1, gen}
for i = 1, #big, 2 do
  local sv = redis.call('GET', prefix .. 'chat:seq:{c:' .. big[i] .. '}')
  if not sv then return {0, gen} end
  local n = tonumber(sv) - tonumber(big[i + 1])
  if n > 0 then out[#out + 1] = big[i]; out[#out + 1] = n end
end
return out
`)

// ReadUnread reads a user's unread counts from Redis in one round trip
// (on a single Redis a MULTI: HGETALL of the user's hash, the big-channel
// script, the epoch; in a cluster the same in a pipeline, and a second
// round trip for the sequence keys of the user's big channels, if any).
// complete is false when the counters must be rebuilt first; gen is then
// what to rebuild against (RebuildUnread): the hash's generation and the
// epoch this read saw.
func (s *State) ReadUnread(ctx context.Context, user string) (counts []store.ChannelUnread, complete bool, gen string, err error) {
	h, ub := s.unreadKeys(user)
	var all *redis.MapStringStringCmd
	var big *redis.Cmd
	var epoch *redis.StringCmd
	// A MULTI may not span slots in a cluster, and the epoch lies in
	// another one; there the big-channel script returns the generation it
	// saw, and a change between the two reads of the hash shows as a
	// generation that differs.
	pipe := s.rdb.TxPipelined
	if s.Cluster() {
		pipe = s.rdb.Pipelined
	}
	_, err = pipe(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, h)
		big = bigReadScript.Eval(ctx, p, []string{ub, h}, s.prefix, s.solo())
		epoch = p.Get(ctx, s.unreadEpochKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, "", err
	}
	fields := all.Val()
	bigRes, _ := big.Slice()
	status, bigGen := int64(0), ""
	if len(bigRes) >= 2 {
		status, _ = bigRes[0].(int64)
		bigGen, _ = bigRes[1].(string)
	}
	ep := cmp.Or(epoch.Val(), "0")
	if fields["ok"] == "" || status == 0 || bigGen != cmp.Or(fields["gen"], "0") || cmp.Or(fields["e"], "0") != ep {
		return nil, false, cmp.Or(bigGen, fields["gen"], "0") + "|" + ep, nil
	}
	bigCounts := bigRes[2:]
	if status == 2 {
		if bigCounts, err = s.bigCounts(ctx, bigCounts); err != nil {
			return nil, false, "", err
		}
		if bigCounts == nil {
			return nil, false, bigGen + "|" + ep, nil
		}
	}
	read := make(map[string]int64, len(fields)/2)
	for k, v := range fields {
		if strings.HasPrefix(k, "r:") {
			read[k[2:]], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	counts = make([]store.ChannelUnread, 0, len(read)+len(bigCounts)/2)
	for k, v := range fields {
		if !strings.HasPrefix(k, "s:") {
			continue
		}
		seq, _ := strconv.ParseInt(v, 10, 64)
		if n := seq - read[k[2:]]; n > 0 {
			counts = append(counts, store.ChannelUnread{ChannelID: k[2:], UserID: user, UnreadCount: int(n)})
		}
	}
	for i := 0; i+1 < len(bigCounts); i += 2 {
		ch, _ := bigCounts[i].(string)
		n, _ := bigCounts[i+1].(int64)
		counts = append(counts, store.ChannelUnread{ChannelID: ch, UserID: user, UnreadCount: int(n)})
	}
	return counts, true, "", nil
}

// bigCounts turns a cluster's channel, read position pairs into channel,
// count pairs (positive counts only) by reading the channels' sequence
// keys, in one round trip. Nil without error when a sequence key is
// missing: the counters must be rebuilt.
func (s *State) bigCounts(ctx context.Context, pairs []any) ([]any, error) {
	if len(pairs) == 0 {
		return []any{}, nil
	}
	keys := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		ch, _ := pairs[i].(string)
		keys = append(keys, s.seqKey(ch))
	}
	seqs, err := s.mget(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(pairs))
	for i, v := range seqs {
		sv, ok := v.(string)
		if !ok {
			return nil, nil
		}
		seq, _ := strconv.ParseInt(sv, 10, 64)
		rs, _ := pairs[2*i+1].(string)
		r, _ := strconv.ParseInt(rs, 10, 64)
		if seq > r {
			out = append(out, pairs[2*i], seq-r)
		}
	}
	return out, nil
}

// rebuildScript replaces a user's counters with PostgreSQL's, merged with
// max() into what Redis already has (every value in either place was
// committed, so the larger is the newer), unless the hash was invalidated
// or the epoch moved since the read that asked for it: PostgreSQL was read
// before a change whose counter write failed, and the result would be
// stamped complete without it. In a cluster, where the epoch key lies in
// another slot, the script cannot look: it stamps the epoch the read saw,
// so counters rebuilt across a move of the epoch are of an older one, and
// rebuilt again by their next read. There it leaves big channels'
// sequence keys to the caller, too. KEYS: hash, big hash. ARGV: prefix,
// solo, gen, epoch, then per channel: id, last_seq, last_read_seq, big.
var rebuildScript = redis.NewScript(`
local h, ub, prefix, solo = KEYS[1], KEYS[2], ARGV[1], ARGV[2] == '1'
local gen = redis.call('HGET', h, 'gen') or '0'
if gen ~= ARGV[3] then return 0 end
local epoch = ARGV[4]
if solo and (redis.call('GET', prefix .. 'chat:epoch') or '0') ~= epoch then return 0 end
local old, oldub = {}, {}
local all = redis.call('HGETALL', h)
for i = 1, #all, 2 do old[all[i]] = tonumber(all[i + 1]) end
all = redis.call('HGETALL', ub)
for i = 1, #all, 2 do oldub[all[i]] = tonumber(all[i + 1]) end
redis.call('DEL', h, ub)
local t, c, b = 0, 0, 0
for i = 5, #ARGV, 4 do
  local ch, s, r = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if ARGV[i + 3] == '1' then
    b = b + 1
    redis.call('HSET', ub, ch, math.max(r, oldub[ch] or 0))
    if solo then
      local key = prefix .. 'chat:seq:{c:' .. ch .. '}'
      local cur = redis.call('GET', key)
      -- Set even at 0: a missing key means "rebuild", so a big channel
      -- with no message yet would send every read to PostgreSQL.
      if not cur or tonumber(cur) < s then redis.call('SET', key, s) end
    end
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
// position, read, unless nil), in one round trip: one script call for
// all of them on a single Redis, one per hash slot of their counters in a
// cluster, pipelined. It returns each member's new totals (unknown while
// a failed write is unsettled, or in a cluster for a member of channels
// above the push limit, whose counts lie in other slots).
func (s *State) BumpUnread(ctx context.Context, channelID string, seq int64, members []string, read *store.ReadPosition) ([]store.UnreadTotals, error) {
	if len(members) == 0 {
		return nil, nil
	}
	cluster := s.Cluster()
	groups := s.bySlot(len(members), func(i int) string { h, _ := s.unreadKeys(members[i]); return h })
	calls := make([]scriptCall, len(groups))
	solo := s.solo()
	for g, idx := range groups {
		keys := make([]string, 0, 2*len(idx))
		senderIdx := 0
		var readSeq int64
		gen := ""
		for j, i := range idx {
			h, ub := s.unreadKeys(members[i])
			keys = append(keys, h, ub)
			if read != nil && members[i] == read.UserID {
				senderIdx, readSeq, gen = j+1, read.Seq, read.Gen
			}
		}
		calls[g] = scriptCall{script: bumpScript, keys: keys, args: []any{s.prefix, solo, channelID, seq, senderIdx, readSeq, gen}}
	}
	ctx = afterCommit(ctx)
	// Write even if the epoch cannot move (Redis refusing writes refuses
	// this too), but trust no totals read back: the hash may have missed
	// the failed write.
	settled := s.SettleUnread(ctx) == nil
	var epoch *redis.StringCmd
	var extra func(redis.Pipeliner)
	if cluster {
		extra = func(p redis.Pipeliner) { epoch = p.Get(ctx, s.unreadEpochKey()) }
	}
	res, err := s.runScripts(ctx, calls, extra)
	if err != nil {
		s.writeFailed(ctx, members)
		return nil, fmt.Errorf("ephemeral: bump unread: %w", err)
	}
	ep := int64(-1)
	if cluster {
		ep, _ = strconv.ParseInt(cmp.Or(epoch.Val(), "0"), 10, 64)
	}
	out := make([]store.UnreadTotals, len(members))
	for g, idx := range groups {
		vals, err := res[g].Int64Slice()
		if err != nil || len(vals) != 3*len(idx) {
			return out, nil // no totals known: PostgreSQL's
		}
		for j, i := range idx {
			t, c, e := vals[3*j], vals[3*j+1], vals[3*j+2]
			if t >= 0 && settled && (!cluster || e == ep) {
				out[i] = store.UnreadTotals{Total: int(t), Channels: int(c), Known: true}
			}
		}
	}
	return out, nil
}

// SetBigChannelSeq records the last_seq of a channel above the push limit
// and the sender's read position, read, unless nil, in one round trip
// (the read first: the sender never sees its own message unread).
func (s *State) SetBigChannelSeq(ctx context.Context, channelID string, seq int64, read *store.ReadPosition) error {
	var users []string
	ctx = afterCommit(ctx)
	seqKey := s.seqKey(channelID)
	calls := make([]scriptCall, 0, 2)
	if read != nil {
		h, ub := s.unreadKeys(read.UserID)
		users = []string{read.UserID}
		calls = append(calls, scriptCall{script: readBigScript, keys: []string{h, ub}, args: []any{s.prefix, s.solo(), channelID, read.Seq, read.Gen}})
	}
	calls = append(calls, scriptCall{script: setMaxScript, keys: []string{seqKey}, args: []any{seq}})
	if _, err := s.runScripts(ctx, calls, nil); err != nil {
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
	var epoch *redis.StringCmd
	var extra func(redis.Pipeliner)
	cluster := s.Cluster()
	if cluster {
		extra = func(pl redis.Pipeliner) { epoch = pl.Get(ctx, s.unreadEpochKey()) }
	}
	cmds, err := s.runScripts(ctx, []scriptCall{{script: markReadScript, keys: []string{h, ub}, args: []any{s.prefix, s.solo(), p.ChannelID, p.Seq, big, p.Gen}}}, extra)
	var res []int64
	if err == nil {
		res, err = cmds[0].Int64Slice()
	}
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		s.writeFailed(ctx, []string{p.UserID})
		return store.UnreadTotals{}, fmt.Errorf("ephemeral: record read: %w", err)
	}
	if res[0] < 0 || !settled {
		return store.UnreadTotals{}, nil
	}
	if cluster {
		if ep, _ := strconv.ParseInt(cmp.Or(epoch.Val(), "0"), 10, 64); ep != res[2] {
			return store.UnreadTotals{}, nil
		}
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

// invalidateScript marks the counters of users incomplete (KEYS: their
// hashes, of one slot in a cluster): one script, so a rebuild that read
// PostgreSQL before the change cannot write between a user's two
// commands, where it found its gen still current, wrote the old
// memberships and set ok again after it was cleared.
var invalidateScript = redis.NewScript(`
for _, h in ipairs(KEYS) do
  redis.call('HINCRBY', h, 'gen', 1)
  redis.call('HDEL', h, 'ok')
end
return 1
`)

// invalidate marks users' counters incomplete and deletes keys, in one
// round trip: one script call per hash slot of the users' counters (one
// on a single Redis), and the deletions.
func (s *State) invalidate(ctx context.Context, users, keys []string) error {
	if len(users) == 0 && len(keys) == 0 {
		return nil
	}
	groups := s.bySlot(len(users), func(i int) string { h, _ := s.unreadKeys(users[i]); return h })
	calls := make([]scriptCall, len(groups))
	for g, idx := range groups {
		hs := make([]string, len(idx))
		for j, i := range idx {
			hs[j], _ = s.unreadKeys(users[i])
		}
		calls[g] = scriptCall{script: invalidateScript, keys: hs}
	}
	var extra func(redis.Pipeliner)
	if len(keys) > 0 {
		extra = func(p redis.Pipeliner) { s.del(ctx, p, keys) }
	}
	_, err := s.runScripts(ctx, calls, extra)
	return err
}

// RebuildUnread replaces a user's counters with the memberships read from
// PostgreSQL after ReadUnread returned gen (see rebuildScript); channels
// above pushLimit members are big. In a cluster the big channels'
// sequence keys are raised in the same pipeline, one call each.
func (s *State) RebuildUnread(ctx context.Context, user, gen string, rows []store.UnreadRow, pushLimit int) error {
	h, ub := s.unreadKeys(user)
	g, epoch, ok := strings.Cut(gen, "|")
	if !ok {
		return fmt.Errorf("ephemeral: rebuild unread: %q is not what ReadUnread returned", gen)
	}
	cluster := s.Cluster()
	args := make([]any, 0, 4+4*len(rows))
	args = append(args, s.prefix, s.solo(), g, epoch)
	var seqs []scriptCall
	for _, r := range rows {
		big := "0"
		if r.Members > pushLimit {
			big = "1"
			if cluster {
				seqs = append(seqs, scriptCall{script: setMaxScript, keys: []string{s.seqKey(r.Channel)}, args: []any{r.LastSeq}})
			}
		}
		args = append(args, r.Channel, r.LastSeq, r.Read, big)
	}
	if len(seqs) > 0 {
		// Before the counters are stamped complete: a read that finds them
		// so finds the sequence keys too. Raising a key to a committed
		// last_seq is right whatever the rebuild decides.
		if _, err := s.runScripts(ctx, seqs, nil); err != nil {
			return fmt.Errorf("ephemeral: rebuild unread: %w", err)
		}
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
