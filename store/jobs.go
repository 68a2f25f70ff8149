package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Job is one unit of background work in the outbox. A mutation writes it in
// the same transaction as its rows, so the work can neither be lost nor run
// for a write that rolled back.
type Job struct {
	ID        uuid.UUID
	Kind      string
	Payload   json.RawMessage
	Attempts  int
	RunAt     time.Time
	CreatedAt time.Time
	// TraceParent and TraceState are the W3C trace context of the request
	// or job that enqueued this one ("" when it was not traced): its
	// worker's span continues that trace.
	TraceParent, TraceState string
}

// Decode unmarshals the job's payload into v.
func (j Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("store: decode %s job %s: %w", j.Kind, j.ID, err)
	}
	return nil
}

// EnqueueJob writes a job to run as soon as a worker is free. Call it with
// the transaction that writes the rows the job derives from.
func (s *Store) EnqueueJob(ctx context.Context, kind string, payload any) (uuid.UUID, error) {
	return s.EnqueueJobAt(ctx, kind, payload, time.Time{})
}

// EnqueueJobAt writes a job that runs no earlier than at (zero: now).
func (s *Store) EnqueueJobAt(ctx context.Context, kind string, payload any, at time.Time) (uuid.UUID, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return uuid.Nil, fmt.Errorf("store: encode %s job: %w", kind, err)
	}
	id := NewID()
	var runAt any
	if !at.IsZero() {
		runAt = at
	}
	parent, state := traceColumns(ctx)
	_, err = s.db.Exec(ctx, `INSERT INTO jobs (id, kind, payload, run_at, trace_parent, trace_state)
		VALUES ($1, $2, $3, coalesce($4, now()), $5, $6)`,
		id, kind, data, runAt, parent, state)
	if err != nil {
		return uuid.Nil, fmt.Errorf("store: enqueue %s job: %w", kind, err)
	}
	return id, nil
}

// ScheduleJob makes sure the singleton job id of kind exists, to run no
// earlier than at; if it exists it is left alone. Periodic work uses one
// such row, so it runs on one node at a time across the cluster.
func (s *Store) ScheduleJob(ctx context.Context, id uuid.UUID, kind string, at time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO jobs (id, kind, payload, run_at) VALUES ($1, $2, '{}', $3)
		ON CONFLICT (id) DO NOTHING`, id, kind, at)
	if err != nil {
		return fmt.Errorf("store: schedule %s job: %w", kind, err)
	}
	return nil
}

// RescheduleJob moves a claimed singleton job to run again at at, instead
// of deleting it.
func (s *Store) RescheduleJob(ctx context.Context, id uuid.UUID, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE jobs SET run_at = $2, attempts = 0, last_error = NULL WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("store: reschedule job: %w", err)
	}
	return nil
}

// ClaimJobs locks up to limit ready jobs of the given kinds for tx. Jobs
// other transactions hold are skipped, so any number of workers on any
// number of nodes share the queue without running a job twice at once.
func (s *Store) ClaimJobs(ctx context.Context, kinds []string, limit int) ([]Job, error) {
	rows, err := s.db.Query(ctx, `
		SELECT id, kind, payload, attempts, run_at, created_at, coalesce(trace_parent, ''), coalesce(trace_state, '') FROM jobs
		WHERE parked_at IS NULL AND run_at <= now() AND kind = ANY($1)
		ORDER BY run_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED`, kinds, limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) {
		var j Job
		err := row.Scan(&j.ID, &j.Kind, &j.Payload, &j.Attempts, &j.RunAt, &j.CreatedAt, &j.TraceParent, &j.TraceState)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	return jobs, nil
}

// CompleteJob deletes a claimed job; it commits with the job's work.
func (s *Store) CompleteJob(ctx context.Context, id uuid.UUID) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM jobs WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: complete job: %w", err)
	}
	return nil
}

// FailJob records a failed attempt of a claimed job: it runs again at
// retryAt, or, when park is set, not again until someone looks at it.
func (s *Store) FailJob(ctx context.Context, id uuid.UUID, reason string, retryAt time.Time, park bool) error {
	_, err := s.db.Exec(ctx, `
		UPDATE jobs SET attempts = attempts + 1, last_error = $2, run_at = $3,
			parked_at = CASE WHEN $4 THEN now() END
		WHERE id = $1`, id, truncate(reason, 2000), retryAt, park)
	if err != nil {
		return fmt.Errorf("store: fail job: %w", err)
	}
	return nil
}

// JobStats describes the outbox queue.
type JobStats struct {
	// Ready is the number of jobs waiting to run now.
	Ready int64
	// Lag is how long the oldest ready job has waited.
	Lag time.Duration
	// Parked is the number of jobs that failed too often and wait for a person.
	Parked int64
}

// JobStats reads the queue's depth, lag and parked jobs.
func (s *Store) JobStats(ctx context.Context) (JobStats, error) {
	var st JobStats
	var lagSeconds float64
	err := s.db.QueryRow(ctx, `
		SELECT
			count(*) FILTER (WHERE parked_at IS NULL AND run_at <= now()),
			coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE parked_at IS NULL AND run_at <= now())), 0)::float8,
			count(*) FILTER (WHERE parked_at IS NOT NULL)
		FROM jobs`).Scan(&st.Ready, &lagSeconds, &st.Parked)
	if err != nil {
		return st, fmt.Errorf("store: job stats: %w", err)
	}
	st.Lag = time.Duration(lagSeconds * float64(time.Second))
	return st, nil
}

// ParkedJob is a job that failed too often.
type ParkedJob struct {
	Job
	LastError string
}

// ParkedJobs lists parked jobs, oldest first.
func (s *Store) ParkedJobs(ctx context.Context, limit int) ([]ParkedJob, error) {
	rows, err := s.db.Query(ctx, `
		SELECT id, kind, payload, attempts, run_at, created_at, coalesce(last_error, '') FROM jobs
		WHERE parked_at IS NOT NULL ORDER BY parked_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: parked jobs: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ParkedJob, error) {
		var j ParkedJob
		err := row.Scan(&j.ID, &j.Kind, &j.Payload, &j.Attempts, &j.RunAt, &j.CreatedAt, &j.LastError)
		return j, err
	})
}
