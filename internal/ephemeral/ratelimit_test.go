package ephemeral_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/ephemeral"
)

func TestAllowAllChargesEveryBudgetOrNone(t *testing.T) {
	s, other := open(t), open(t)
	ctx := context.Background()
	tag := fmt.Sprint(time.Now().UnixNano())
	wide := ephemeral.Budget{Key: "wide:" + tag, Rate: ephemeral.Rate{Rate: 10, Period: time.Minute, Burst: 10}, What: "wide things"}
	narrow := ephemeral.Budget{Key: "narrow:" + tag, Rate: ephemeral.Rate{Rate: 2, Period: time.Minute, Burst: 2}, What: "narrow things"}
	off := ephemeral.Budget{Key: "off:" + tag, What: "unlimited things"}

	// Two events fit the narrow budget; the second comes through another
	// store, as from another node.
	for i, st := range []*ephemeral.State{s, other} {
		if err := st.AllowAll(ctx, wide, narrow, off); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
	}
	// The third is refused by the narrow budget, and the wide one pays nothing.
	err := s.AllowAll(ctx, wide, narrow, off)
	var rl *ephemeral.RateLimitedError
	if !errors.As(err, &rl) || rl.What != "narrow things" {
		t.Fatalf("third event: %v", err)
	}
	if rl.RetryAfter <= 0 || rl.RetryAfter > 30*time.Second+time.Second {
		t.Fatalf("retry after %v; one event of 2 per minute frees in about 30s", rl.RetryAfter)
	}
	// With two budgets spent, the wait is the longer of the two: the
	// narrow one names the error (it comes first), the slower one sets
	// the wait.
	slow := ephemeral.Budget{Key: "slow:" + tag, Rate: ephemeral.Rate{Rate: 1, Period: time.Hour, Burst: 1}, What: "slow things"}
	if err := s.AllowAll(ctx, slow); err != nil {
		t.Fatal(err)
	}
	err = s.AllowAll(ctx, narrow, slow)
	if !errors.As(err, &rl) || rl.What != "narrow things" || rl.RetryAfter < 59*time.Minute {
		t.Fatalf("two spent budgets: %v", err)
	}
	// 2 spent of 10: eight more fit the wide budget alone, the ninth does not.
	for i := 0; i < 8; i++ {
		if err := s.AllowAll(ctx, wide); err != nil {
			t.Fatalf("wide event %d: %v", i+3, err)
		}
	}
	if err := s.AllowAll(ctx, wide); !errors.As(err, &rl) || rl.What != "wide things" {
		t.Fatalf("eleventh wide event: %v", err)
	}
}

func TestAllowAllAddsTheCostsOfOneKey(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	b := ephemeral.Budget{Key: fmt.Sprint("same:", time.Now().UnixNano()), Rate: ephemeral.Rate{Rate: 3, Period: time.Minute, Burst: 3}, What: "sends"}
	// Twice in one call costs two; a third and fourth together do not fit
	// the one event left, and are refused whole.
	if err := s.AllowAll(ctx, b, b); err != nil {
		t.Fatal(err)
	}
	var rl *ephemeral.RateLimitedError
	if err := s.AllowAll(ctx, b, b); !errors.As(err, &rl) {
		t.Fatalf("two more of three: %v", err)
	}
	two := b
	two.Cost = 2
	if err := s.AllowAll(ctx, two); !errors.As(err, &rl) {
		t.Fatalf("a cost of two with one left: %v", err)
	}
	if err := s.AllowAll(ctx, b); err != nil {
		t.Fatalf("the one event left: %v", err)
	}
}
