package ephemeral

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
)

// Rate is a rate limit: Rate events per Period, with bursts of up to Burst.
// The zero Rate means no limit.
type Rate struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Off reports whether the rate is no limit at all.
func (r Rate) Off() bool { return r.Rate <= 0 || r.Period <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d per %s, bursts of %d", r.Rate, r.Period, r.Burst)
}

// RateLimitedError says that a budget is spent and when to try again. The
// API reports it as RATE_LIMITED with a retryAfter hint.
type RateLimitedError struct {
	// What names the budget, like "requests from your user".
	What string
	// Key is the budget's key, as the Budget gave it.
	Key string
	// RetryAfter is how long until one more event is allowed.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many %s; retry in %ds", e.What, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter as the API reports it, in
// extensions.retryAfter and in the Retry-After header alike.
func (e *RateLimitedError) RetryAfterSeconds() int { return RetryAfterSeconds(e.RetryAfter) }

// RetryAfterSeconds is a wait in whole seconds, rounded up, and at least 1:
// the Retry-After header can say nothing finer, and a client told 0 would
// retry at once into the same refusal. It is the one rule for every wait
// the API reports, so that header and body never disagree.
func RetryAfterSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// Budget is one budget an event spends: Cost events (at least one) of the
// budget Key under Rate. What names it in the error when it is spent.
// Owner, when set, is the hash tag of its Redis key (like "u:<user id>"):
// budgets of one owner lie in one hash slot of a Redis Cluster, so that
// one script charges them together; without it the key is its own tag.
type Budget struct {
	Key   string
	Rate  Rate
	What  string
	Cost  int
	Owner string
}

// rateKey is a budget's Redis key: rate:{owner}:key, or rate:{key}.
func (s *State) rateKey(b Budget) string {
	if b.Owner == "" {
		return s.Key("rate", "{"+b.Key+"}")
	}
	return s.Key("rate", "{"+b.Owner+"}", b.Key)
}

// AllowAll spends an event from every budget at once, in one Redis round
// trip, or from none of them: when any is spent the result is a
// *RateLimitedError naming the first such budget, with the wait after
// which all of them can pay, and nothing is charged. The
// budgets live in Redis, so every node shares them. Budgets with the same key
// are charged as one with their costs added. When Redis cannot be reached
// the event is allowed: losing Redis costs protection for a moment, never
// service.
//
// In a Redis Cluster one script charges the budgets of each hash slot
// (those of one Owner), all in one pipeline; when one slot's refuses
// while others' paid, a second round trip refunds those, exactly (GCRA's
// charge is an addition to a time), so a refused event still costs
// nothing. Between the two, a concurrent event may see the refunded
// budgets fuller than they are, and be refused once too often.
func (s *State) AllowAll(ctx context.Context, budgets ...Budget) error {
	keys := make([]string, 0, len(budgets))
	args := make([]any, 0, 4*len(budgets))
	var named []Budget
	for _, b := range budgets {
		if b.Rate.Off() {
			continue
		}
		cost := max(b.Cost, 1)
		key := s.rateKey(b)
		if i := slices.Index(keys, key); i >= 0 {
			args[4*i+3] = args[4*i+3].(int) + cost
			continue
		}
		keys = append(keys, key)
		named = append(named, b)
		args = append(args, max(b.Rate.Burst, 1), b.Rate.Rate, b.Rate.Period.Seconds(), cost)
	}
	if len(keys) == 0 {
		return nil
	}
	groups := s.bySlot(len(keys), func(i int) string { return keys[i] })
	calls := make([]scriptCall, len(groups))
	for g, idx := range groups {
		c := scriptCall{script: gcra, keys: make([]string, 0, len(idx)), args: make([]any, 0, 4*len(idx))}
		for _, i := range idx {
			c.keys = append(c.keys, keys[i])
			c.args = append(c.args, args[4*i:4*i+4]...)
		}
		calls[g] = c
	}
	res, err := s.runScripts(ctx, calls, nil)
	spent, wait := -1, 0.0
	var paid []scriptCall
	for g, idx := range groups {
		if err != nil {
			break
		}
		var r []any
		if r, err = res[g].Slice(); err == nil && len(r) != 2 {
			err = fmt.Errorf("unexpected reply %v", r)
		}
		if err != nil {
			break
		}
		i, _ := r[0].(int64)
		if i == 0 {
			paid = append(paid, scriptCall{script: gcraRefund, keys: calls[g].keys, args: calls[g].args})
			continue
		}
		if first := idx[i-1]; spent < 0 || first < spent {
			spent = first
		}
		w, _ := strconv.ParseFloat(fmt.Sprint(r[1]), 64)
		wait = max(wait, w)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "rate limit check failed; allowing", "keys", keys, "err", err)
		return nil
	}
	if spent < 0 {
		return nil
	}
	if len(paid) > 0 {
		if _, err := s.runScripts(ctx, paid, nil); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "rate limit refund failed", "err", err)
		}
	}
	return &RateLimitedError{What: named[spent].What, Key: named[spent].Key, RetryAfter: max(time.Duration(wait*float64(time.Second)), time.Millisecond)}
}

// gcraRefund takes back what gcra charged (same KEYS and ARGV), when
// budgets in another slot refused the event.
var gcraRefund = redis.NewScript(`
redis.replicate_commands()
local t = redis.call("TIME")
local now = (t[1] - 1483228800) + (t[2] / 1000000)
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call("GET", key) or "0")
  local new_tat = tat - tonumber(ARGV[4*i-1]) / tonumber(ARGV[4*i-2]) * tonumber(ARGV[4*i])
  if new_tat <= now then
    redis.call("DEL", key)
  else
    redis.call("SET", key, new_tat, "KEEPTTL")
  end
end
return 1
`)

// gcra is the generic cell rate algorithm (the one go-redis/redis_rate
// runs) over several budgets in one script, so that one round trip checks
// them all and charges either all or none. KEYS are the budgets; ARGV holds
// burst, rate, period in seconds and cost for each. It returns {0, "0"} when
// every budget was charged, or {i, seconds to wait} for the first budget i
// (from 1) that cannot pay, with the longest wait of those that cannot.
var gcra = redis.NewScript(`
redis.replicate_commands()
local t = redis.call("TIME")
-- seconds since 2017, so that the float keeps microseconds
local now = (t[1] - 1483228800) + (t[2] / 1000000)
local tats, spent, wait = {}, 0, 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[4*i-3])
  local interval = tonumber(ARGV[4*i-1]) / tonumber(ARGV[4*i-2])
  local tat = tonumber(redis.call("GET", key) or now)
  tat = math.max(tat, now)
  local new_tat = tat + interval * tonumber(ARGV[4*i])
  local diff = now - (new_tat - interval * burst)
  if diff < 0 then
    if spent == 0 then spent = i end
    wait = math.max(wait, -diff)
  end
  tats[i] = new_tat
end
if spent > 0 then
  return {spent, tostring(wait)}
end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil(tats[i] - now)
  if ttl > 0 then
    redis.call("SET", key, tats[i], "EX", ttl)
  end
end
return {0, "0"}
`)
