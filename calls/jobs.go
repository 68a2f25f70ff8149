package workers

import (
	"context"
	"time"

	"github.com/brookhq/brook/store"
)

// Job kinds of the calls product.
const (
	// callSweepKind removes participants whose liveness deadline has
	// passed (their callEvents subscription has been gone for the timeout,
	// on whichever node it was, crashed or not) and ends the sessions they
	// leave empty.
	callSweepKind = "calls.sweep"
	// callRepairKind restores liveness entries Redis lost and ends live
	// sessions left without participants.
	callRepairKind = "calls.repair"
)

// callSweepBatch caps the participants one sweep removes; the next sweep
// takes the rest.
const callSweepBatch = 500

// registerCalls registers the background jobs of the calls product.
func (r *Runner) registerCalls() {
	interval := r.opts.CallSweepInterval
	if interval <= 0 {
		interval = time.Second
	}
	timeout := r.opts.CallParticipantTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	r.Every(callSweepKind, interval, r.callSweep)
	r.Every(callRepairKind, max(2*timeout, time.Minute), func(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
		return r.callRepair(ctx, tx, timeout)
	})
}

// callSweep is one pass of the participant-timeout sweep. Liveness
// deadlines are in Redis (refreshed by the node holding each participant's
// subscription); the removal is one transaction in PostgreSQL, and the
// events and Redis cleanup follow the commit.
func (r *Runner) callSweep(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
	ids, err := r.store.ExpiredCallParticipants(ctx, time.Now(), callSweepBatch)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	d, err := tx.RemoveCallParticipants(ctx, ids, store.CallLeftTimeout)
	if err != nil {
		return nil, err
	}
	if len(d.Left) > 0 {
		r.log.Info("calls: participants timed out", "left", len(d.Left), "sessions_ended", len(d.Ended))
	}
	return func(ctx context.Context) { r.store.FinishCallDepartures(ctx, r.bus, d) }, nil
}

// callRepair makes Redis agree with PostgreSQL again after Redis lost
// data: participants still in a call get a fresh deadline (so they time
// out unless a subscription keeps them alive), and sessions with nobody
// left end.
func (r *Runner) callRepair(ctx context.Context, tx *store.Store, timeout time.Duration) (func(context.Context), error) {
	restored, err := tx.RestoreCallLiveness(ctx, time.Now().Add(timeout))
	if err != nil {
		return nil, err
	}
	if restored > 0 {
		r.log.Warn("calls: restored liveness entries missing from redis", "participants", restored)
	}
	ended, err := tx.EndEmptyCallSessions(ctx, 500)
	if err != nil || len(ended) == 0 {
		return nil, err
	}
	return func(ctx context.Context) {
		r.store.FinishCallDepartures(ctx, r.bus, &store.CallDepartures{Ended: ended})
	}, nil
}
