package store

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
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
	// RetryAfter is how long until one more event is allowed.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many %s; retry in %.1fs", e.What, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter in seconds, rounded up to a tenth.
func (e *RateLimitedError) RetryAfterSeconds() float64 {
	tenths := (e.RetryAfter + 100*time.Millisecond - 1) / (100 * time.Millisecond)
	return float64(tenths) / 10
}

// Allow spends one event of the budget key under rate (GCRA in Redis, so the
// budget is shared by every node). A spent budget is a *RateLimitedError
// naming what. When Redis cannot be reached the event is allowed: losing
// Redis costs protection for a moment, never service.
func (s *Store) Allow(ctx context.Context, key string, rate Rate, what string) error {
	if rate.Off() {
		return nil
	}
	res, err := s.limiter.Allow(ctx, s.Key("rate", key), redis_rate.Limit{Rate: rate.Rate, Period: rate.Period, Burst: max(rate.Burst, 1)})
	if err != nil {
		s.log.Warn("rate limit check failed; allowing", "key", key, "err", err)
		return nil
	}
	if res.Allowed == 0 {
		return &RateLimitedError{What: what, RetryAfter: max(res.RetryAfter, time.Millisecond)}
	}
	return nil
}
