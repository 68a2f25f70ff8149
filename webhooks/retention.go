package webhooks

import (
	"context"
	"time"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// retentionKind is the periodic job that deletes DELIVERED deliveries
// older than Options.Retention. Pending, failed and parked ones stay.
const retentionKind = "webhooks.retention"

// retentionBatches caps the batches one run deletes; the next run goes
// on where it stopped.
const retentionBatches = 100

// RegisterJobs gives the workers the deliveries' retention job, every
// Options.RetentionEvery on one node of the cluster.
func (s *Service) RegisterJobs(r *workers.Runner) {
	r.Every(retentionKind, s.opts.RetentionEvery, s.retentionJob)
}

// retentionJob deletes delivered deliveries older than the retention, in
// batches of RetentionBatch rows, each its own statement outside the
// job's transaction: a backlog of millions never holds one long
// transaction or lock, and what a run leaves the next one deletes.
func (s *Service) retentionJob(ctx context.Context, _ *store.Store, _ store.Job) (func(context.Context), error) {
	_, err := s.DeleteDelivered(ctx, time.Now().Add(-s.opts.Retention))
	return nil, err
}

// DeleteDelivered deletes the DELIVERED deliveries delivered before
// cutoff, in batches (at most retentionBatches of them), and returns how
// many it deleted.
func (s *Service) DeleteDelivered(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for range retentionBatches {
		n, err := s.store.DeleteDeliveredBefore(ctx, cutoff, s.opts.RetentionBatch)
		total += n
		if err != nil || n < s.opts.RetentionBatch {
			if total > 0 {
				s.log.Info("webhooks: old deliveries deleted", "deleted", total)
			}
			return total, err
		}
	}
	s.log.Info("webhooks: old deliveries deleted; more remain for the next run", "deleted", total)
	return total, nil
}
