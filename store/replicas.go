package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Read replicas (DATABASE_REPLICA_URLS). Reads that may lag (feed pages,
// channel history, search, lists) run on a replica when their context
// says so (MayLag) and the Store is not inside a transaction; everything
// else runs on the primary. A background checker measures each replica's
// lag and takes one that lags past ReplicaMaxLag, or fails, out of
// rotation until it is healthy again; with none healthy, reads go to the
// primary.

// DefaultReplicaMaxLag is how far a replica may lag behind the primary and
// still serve reads (BROOK_REPLICA_MAX_LAG).
const DefaultReplicaMaxLag = 2 * time.Second

type mayLagKey struct{}

// MayLag marks ctx's reads as ones a replica may serve: a read of a
// user who has not written within the read-your-writes window (see
// ReadYourWritesWindow). Without it every read goes to the primary.
func MayLag(ctx context.Context) context.Context { return context.WithValue(ctx, mayLagKey{}, true) }

// readsPrimary reports whether reader(ctx) is s.db without asking the
// replicas: no replicas, a transaction, or a read that may not lag.
func (s *Store) readsPrimary(ctx context.Context) bool {
	return s.replicas == nil || s.db != Querier(s.pool) || ctx.Value(mayLagKey{}) == nil
}

// reader returns what a read that may lag runs on: a healthy replica when
// ctx allows it and s is bound to the pool, the primary otherwise.
func (s *Store) reader(ctx context.Context) Querier {
	rs := s.replicas
	if s.readsPrimary(ctx) {
		return s.db
	}
	if r := rs.pick(); r != nil {
		rs.replicaReads.Add(1)
		return replicaQuerier{r: r, set: rs, primary: s.pool}
	}
	rs.primaryReads.Add(1)
	return s.db
}

// ReadYourWritesWindow is how long after a write its author's reads must
// stay on the primary: the lag bound plus one check interval, past which
// no replica in rotation can still lack the write. Zero without replicas.
func (s *Store) ReadYourWritesWindow() time.Duration {
	if s.replicas == nil {
		return 0
	}
	return s.replicas.maxLag + s.replicas.interval
}

// ReplicaStatus is one replica's state, as the last check saw it.
type ReplicaStatus struct {
	// Name is the replica's host:port.
	Name string
	// Healthy says it serves reads.
	Healthy bool
	// Lag is how far its replay was behind the primary (-1: unknown).
	Lag time.Duration
}

// Replicas reports the replicas' states; none without replicas.
func (s *Store) Replicas() []ReplicaStatus {
	if s.replicas == nil {
		return nil
	}
	out := make([]ReplicaStatus, len(s.replicas.all))
	for i, r := range s.replicas.all {
		out[i] = ReplicaStatus{Name: r.name, Healthy: r.healthy.Load(), Lag: time.Duration(r.lag.Load())}
	}
	return out
}

// LaggingReads counts the reads that may lag, by where they ran: on a
// replica, or on the primary for want of a healthy one.
func (s *Store) LaggingReads() (onReplica, onPrimary int64) {
	if s.replicas == nil {
		return 0, 0
	}
	return s.replicas.replicaReads.Load(), s.replicas.primaryReads.Load()
}

type replica struct {
	name    string
	pool    *pgxpool.Pool
	healthy atomic.Bool
	lag     atomic.Int64 // nanoseconds; -1 unknown
}

type replicaSet struct {
	primary  *pgxpool.Pool
	all      []*replica
	maxLag   time.Duration
	interval time.Duration
	log      *slog.Logger
	next     atomic.Uint64

	replicaReads, primaryReads atomic.Int64

	// samples, the primary's WAL positions over time, belong to the
	// checker goroutine (and to openReplicas before it starts).
	samples []walSample

	stop func()
	done chan struct{}
	once sync.Once
}

type walSample struct {
	at  time.Time
	lsn int64
}

// openReplicas opens a pool per replica URL, configured as the primary's
// (cfg), checks them once and starts the checker. A replica that does not
// answer now is only out of rotation: the node starts without it.
func (s *Store) openReplicas(ctx context.Context, cfg *pgxpool.Config, opts Options) error {
	if len(opts.ReplicaURLs) == 0 {
		return nil
	}
	rs := &replicaSet{primary: s.pool, maxLag: opts.ReplicaMaxLag, log: s.log, done: make(chan struct{})}
	if rs.maxLag <= 0 {
		rs.maxLag = DefaultReplicaMaxLag
	}
	rs.interval = min(max(rs.maxLag/4, 50*time.Millisecond), time.Second)
	for _, u := range opts.ReplicaURLs {
		rcfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			rs.closePools()
			return fmt.Errorf("store: parse replica URL: %w", err)
		}
		rcfg.MaxConns = cfg.MaxConns
		rcfg.AfterConnect = cfg.AfterConnect
		rcfg.ConnConfig.Tracer = cfg.ConnConfig.Tracer
		rcfg.ConnConfig.DefaultQueryExecMode = cfg.ConnConfig.DefaultQueryExecMode
		pool, err := pgxpool.NewWithConfig(ctx, rcfg)
		if err != nil {
			rs.closePools()
			return fmt.Errorf("store: open replica pool: %w", err)
		}
		r := &replica{name: net.JoinHostPort(rcfg.ConnConfig.Host, strconv.Itoa(int(rcfg.ConnConfig.Port))), pool: pool}
		r.lag.Store(-1)
		rs.all = append(rs.all, r)
	}
	rs.check(ctx)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs.stop = cancel
	go rs.run(runCtx)
	s.replicas = rs
	return nil
}

// run checks the replicas every interval until close.
func (rs *replicaSet) run(ctx context.Context) {
	defer close(rs.done)
	t := time.NewTicker(rs.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rs.check(ctx)
		}
	}
}

// close stops the checker and closes the replicas' pools.
func (rs *replicaSet) close() {
	if rs == nil {
		return
	}
	rs.once.Do(func() {
		rs.stop()
		<-rs.done
		rs.closePools()
	})
}

func (rs *replicaSet) closePools() {
	for _, r := range rs.all {
		r.pool.Close()
	}
}

// pick returns the next healthy replica in turn, or nil.
func (rs *replicaSet) pick() *replica {
	n := uint64(len(rs.all))
	start := rs.next.Add(1)
	for i := uint64(0); i < n; i++ {
		if r := rs.all[(start+i)%n]; r.healthy.Load() {
			return r
		}
	}
	return nil
}

// check samples the primary's WAL position and measures each replica's
// lag against the samples: the time since the primary first had WAL the
// replica has not replayed yet (exact to one interval). Comparing
// positions rather than replay timestamps keeps an idle primary from
// looking like a lagging replica. The insert position counts commits
// still in the primary's WAL buffers (synchronous_commit off).
func (rs *replicaSet) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, uncountedKey{}, true), max(rs.interval, time.Second))
	defer cancel()
	now := time.Now()
	var lsn int64
	if err := rs.primary.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint`).Scan(&lsn); err == nil {
		if len(rs.samples) == 0 || rs.samples[len(rs.samples)-1].lsn != lsn {
			rs.samples = append(rs.samples, walSample{at: now, lsn: lsn})
		}
		// Samples older than twice the bound only tell that a replica is
		// out of rotation, which a younger one tells as well.
		keep := 0
		for keep < len(rs.samples)-1 && now.Sub(rs.samples[keep].at) > 2*rs.maxLag+rs.interval {
			keep++
		}
		rs.samples = rs.samples[keep:]
	}
	for _, r := range rs.all {
		var recovering bool
		var replayed int64
		err := r.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), COALESCE(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint, 0)`).
			Scan(&recovering, &replayed)
		switch {
		case err != nil:
			r.lag.Store(-1)
			rs.setHealthy(r, false, "it does not answer: "+err.Error())
		case !recovering:
			// Promoted: no longer a copy of the primary this node writes to.
			r.lag.Store(-1)
			rs.setHealthy(r, false, "it is not in recovery (promoted?)")
		default:
			lag := time.Duration(0)
			for _, s := range rs.samples {
				if s.lsn > replayed {
					lag = now.Sub(s.at)
					break
				}
			}
			r.lag.Store(int64(lag))
			rs.setHealthy(r, lag <= rs.maxLag, "it lags "+lag.Round(time.Millisecond).String()+", past BROOK_REPLICA_MAX_LAG")
		}
	}
}

func (rs *replicaSet) setHealthy(r *replica, ok bool, why string) {
	if r.healthy.Swap(ok) == ok {
		return
	}
	if ok {
		rs.log.Info("read replica back in rotation", "replica", r.name)
	} else {
		rs.log.Warn("read replica out of rotation", "replica", r.name, "reason", why)
	}
}

// replicaQuerier runs reads on a replica and, when the replica cannot be
// reached, takes it out of rotation and runs them on the primary. Writes
// never reach it: anything but a read runs on the primary.
type replicaQuerier struct {
	r       *replica
	set     *replicaSet
	primary *pgxpool.Pool
}

func (q replicaQuerier) failed(err error) bool {
	if !IsUnavailable(err) && !schemaBehind(err) {
		return false
	}
	q.set.setHealthy(q.r, false, "a read failed: "+err.Error())
	q.set.replicaReads.Add(-1)
	q.set.primaryReads.Add(1)
	return true
}

func (q replicaQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := q.r.pool.Query(ctx, sql, args...)
	if err != nil && q.failed(err) {
		return q.primary.Query(ctx, sql, args...)
	}
	return rows, err
}

func (q replicaQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return replicaRow{q: q, ctx: ctx, sql: sql, args: args}
}

func (q replicaQuerier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return q.primary.Exec(ctx, sql, args...)
}

func (q replicaQuerier) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return q.primary.SendBatch(ctx, b)
}

func (q replicaQuerier) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return q.primary.CopyFrom(ctx, table, columns, src)
}

func (q replicaQuerier) Begin(ctx context.Context) (pgx.Tx, error) { return q.primary.Begin(ctx) }

// schemaBehind reports an error of a replica that has not yet replayed a
// migration the primary has: a column, table or function the statement
// names is not there yet. The read runs on the primary instead, and the
// replica sits out until the next check finds it caught up.
func schemaBehind(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "42703", "42P01", "42883", "42704": // undefined column, table, function, object
		return true
	}
	return false
}

// replicaRow runs its statement when scanned, so that a replica that
// fails can be replaced by the primary.
type replicaRow struct {
	q    replicaQuerier
	ctx  context.Context
	sql  string
	args []any
}

func (r replicaRow) Scan(dest ...any) error {
	err := r.q.r.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	if err != nil && r.q.failed(err) {
		return r.q.primary.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return err
}
