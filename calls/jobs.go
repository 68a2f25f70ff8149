package calls

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Job kinds of the calls product.
const (
	// sweepKind removes participants whose liveness deadline has passed
	// (their callEvents subscription has been gone for the timeout, on
	// whichever node it was, crashed or not) and ends the sessions they
	// leave empty.
	sweepKind = "calls.sweep"
	// repairKind restores liveness entries Redis lost and ends live
	// sessions left without participants.
	repairKind = "calls.repair"
)

// sweepBatch caps the participants one sweep removes; the next sweep takes
// the rest.
const sweepBatch = 500

// RegisterJobs gives the workers the calls product's periodic jobs: the
// participant-timeout sweep (every SweepInterval) and the repair pass,
// and the ring timeout and the call types' max duration.
func (s *Service) RegisterJobs(r *workers.Runner) {
	r.Every(sweepKind, s.sweepEvery, s.sweepJob)
	r.Every(repairKind, max(2*s.timeout, time.Minute), s.repairJob)
	s.registerRingJobs(r)
	s.registerTypeJobs(r)
}

// sweepJob is one pass of the participant-timeout sweep. Liveness
// deadlines are in Redis (refreshed by the node holding each participant's
// subscription); the removal is one transaction in PostgreSQL, and the
// events and Redis cleanup follow the commit.
func (s *Service) sweepJob(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
	ids, err := s.state.ExpiredCallParticipants(ctx, time.Now(), sweepBatch)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	d, err := tx.RemoveCallParticipants(ctx, ids, store.CallLeftTimeout)
	if err != nil {
		return nil, err
	}
	if err := s.hooks.EmitAll(ctx, tx, sessionHooks(d, false, "")); err != nil {
		return nil, err
	}
	if len(d.Left) > 0 {
		s.log.Info("calls: participants timed out", "left", len(d.Left), "sessions_ended", len(d.Ended))
	}
	return func(ctx context.Context) { s.announceDepartures(ctx, d) }, nil
}

// repairJob makes Redis agree with PostgreSQL again after Redis lost
// data: participants still in a call get a fresh deadline (so they time
// out unless a subscription keeps them alive), and sessions with nobody
// left end.
func (s *Service) repairJob(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
	restored, err := s.restoreLiveness(ctx, tx, time.Now().Add(s.timeout))
	if err != nil {
		return nil, err
	}
	if restored > 0 {
		s.log.Warn("calls: restored liveness entries missing from redis", "participants", restored)
	}
	ended, err := tx.EndEmptyCallSessions(ctx, 500)
	if err != nil || len(ended) == 0 {
		return nil, err
	}
	if err := s.hooks.EmitAll(ctx, tx, sessionHooks(&store.CallDepartures{Ended: ended, Reason: "repair"}, false, "")); err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		s.announceDepartures(ctx, &store.CallDepartures{Ended: ended})
	}, nil
}

// restoreLiveness gives every participant still in a call in PostgreSQL
// but missing from Redis's liveness set (Redis lost it) a deadline of
// until, so it times out unless a subscription keeps it alive. It pages
// through live participants in batches; it returns how many entries it
// restored.
func (s *Service) restoreLiveness(ctx context.Context, tx *store.Store, until time.Time) (int, error) {
	restored := 0
	after := uuid.Nil
	for {
		ids, err := tx.LiveCallParticipantIDs(ctx, after, 1000)
		if err != nil || len(ids) == 0 {
			return restored, err
		}
		n, err := s.state.RestoreCallLiveness(ctx, ids, until)
		if err != nil {
			return restored, err
		}
		restored += n
		after = ids[len(ids)-1]
	}
}
