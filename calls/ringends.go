package calls

import (
	"context"
	"time"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Rings end with the call around them. A call that ends (endCall, or a
// session past its type's maxDurationSeconds) cancels the rings still
// ringing, in the transaction that ends it, so the rung users' banners
// stop; a rung user who joins accepts their ring, as Stream's join does.
// Both decide through the same conditional UPDATE as acceptCall and the
// timeout job, so a ring is decided once whichever wins.

// announceEndedRings follows the commit that ended a call and cancelled
// its rings: call.ring_cancelled to each rung user (every device) and its
// caller, then call.ended to each of them once.
func (s *Service) announceEndedRings(ctx context.Context, out *store.RingOutcome) {
	if out == nil || len(out.Rings) == 0 {
		return
	}
	s.announceRings(ctx, out)
	ctx = redisguard.Background(context.WithoutCancel(ctx))
	told := map[string]bool{}
	at := time.Now().UTC()
	for _, r := range out.Rings {
		ended := &CallRingEvent{Type: EventCallEnded, Call: out.Call, Ring: r, CreatedAt: at}
		for _, u := range []string{r.UserID, r.CallerID} {
			if !told[u] {
				told[u] = true
				s.publishRing(ctx, u, ended)
			}
		}
	}
}
